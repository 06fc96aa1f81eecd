"""The benchmark harness: our server against bare Starlette on the same uvicorn, under wrk."""
