-- POST a different ProductById body per request: the ids come from a file, in its order.
-- Script arguments: 1. the body template, holding the placeholder @ID@; 2. a file of global ids,
-- one a line. bench/run.py writes both (published products, drawn with a fixed seed).
-- Each thread walks the same sequence from its own offset, so a run is repeatable.
local STRIDE = 7919
local threads = 0

function setup(thread)
  thread:set("offset", threads * STRIDE)
  threads = threads + 1
end

local function read(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

local ids, prefix, suffix, position

function init(args)
  local template = read(assert(args[1], "usage: product_by_id.lua <template> <ids file>"))
  local at = assert(string.find(template, "@ID@", 1, true), "the template lacks @ID@")
  prefix = string.sub(template, 1, at - 1)
  suffix = string.sub(template, at + 4)
  ids = {}
  for line in string.gmatch(read(assert(args[2], "usage: product_by_id.lua <template> <ids file>")), "[^\n]+") do
    ids[#ids + 1] = line
  end
  assert(#ids > 0, "the ids file is empty")
  position = (offset or 0) % #ids
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  position = position % #ids + 1
  return wrk.format(nil, nil, nil, prefix .. ids[position] .. suffix)
end
