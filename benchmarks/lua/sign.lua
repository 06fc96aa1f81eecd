-- Signing: a POST of the real form with a fresh email on every request.
-- Arguments after `--`: form token, path, Accept header value, a prefix unique to this run, and
-- (optional) more form fields to send, already encoded (e.g. "opt_in_partner=yes").
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  token = args[1]
  path = args[2]
  accept = args[3]
  prefix = args[4]
  extra = args[5] and args[5] ~= "" and ("&" .. args[5]) or ""
  counter = 0
  -- As a browser posts the form: it takes compressed answers.
  headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Accept"] = accept,
    ["Accept-Encoding"] = "gzip, deflate, br, zstd",
  }
end

function request()
  counter = counter + 1
  local body = "name=Bench+Signer&occupation=nurse&email=" .. prefix .. "-" .. tid .. "-" .. counter
    .. "%40example.org&form_token=" .. token .. extra
  return wrk.format("POST", path, headers, body)
end
