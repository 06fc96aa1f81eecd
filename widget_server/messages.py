"""Every sentence a supporter, a partner or campaign staff reads, in one place.

Kept apart from the code that decides when to say them, so the wording can be reviewed as a
whole and translations can hook in here later. Sentences with a `{placeholder}` are filled in
with `str.format` by the code that raises them.
"""

from __future__ import annotations

# The sign form: what a supporter is asked to correct.
NAME_MISSING = "Please enter your name."
EMAIL_MISSING = "Please enter your email address."
EMAIL_INVALID = "Please enter an email address like name@example.org."
TOO_LONG = "Please keep this to {limit} characters or fewer."

# Signing: why a post was not counted (yet).
TOO_QUICK = "Thank you! Just checking a person is signing: please press Sign again."
FORM_EXPIRED = "This form was open for a long time. Your details are kept below; please press Sign again."
FORM_BAD = "This form could not be checked. Please reload the page and sign again."
OTHER_PLEDGE = "This form belongs to a different pledge. Please reload the page."
CROSS_SITE = "Signatures can only be sent from the pledge's own form."
SLOW_DOWN = "Many signatures are arriving from your connection. Please try again in a minute."
PARTNER_BUSY = "This form is receiving an unusual number of signatures. Please try again shortly."
NOT_A_FORM = "Please send the pledge form as a normal web form."
TOO_MANY_FIELDS = "That form had more fields than the pledge form has. Please reload the page and sign again."
TOO_LARGE = "That form was too large to accept. Please shorten what you typed and try again."
RESTARTING = "The service is restarting; please sign again in a moment."
NOT_RECORDED = "We could not record your signature just now; please try again."

# Partner tokens and where a widget may be shown.
TAMPERED = "This widget's code is damaged or incomplete. Please copy the snippet again from the campaign."
ROTATED = "This widget's code has been replaced by a newer one. Please ask the campaign for the current snippet."
REVOKED = "This organisation's widget has been switched off by the campaign."
WRONG_PLEDGE = "This widget's code belongs to a different pledge."
WRONG_SITE = "This form can only be shown on the websites the campaign approved for this organisation."

# Addresses and the server itself.
NO_PLEDGE_HERE = "There is no pledge at this address."
NO_SUCH_FILE = "There is no such file."
NO_SUCH_ADDRESS = "There is nothing at this address."
WRONG_METHOD = "This address does not accept that kind of request."
UNHANDLED = "That request could not be handled."
SERVER_ERROR = "Sorry, something went wrong on our side. Please try again in a moment."
