-- POST one fixed JSON body to the URL wrk was given.
-- Script argument 1: the file holding the body (written by bench/run.py).
local function read(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

function init(args)
  wrk.method = "POST"
  wrk.body = read(assert(args[1], "usage: static_body.lua <body file>"))
  wrk.headers["Content-Type"] = "application/json"
end
