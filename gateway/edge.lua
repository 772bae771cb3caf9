-- The edge's Lua filter: runs before the gRPC-JSON transcoder on requests, after it on responses.

local MAX_PAIRS = 2000
local MAX_DEPTH = 8

-- `s` with every byte that is not part of well-formed UTF-8 replaced by U+FFFD: error messages quote
-- the caller's field names, and a JSON answer must stay valid UTF-8 whatever the caller sent.
local function valid_utf8(s)
  if not string.find(s, "[\128-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = string.byte(s, i)
    local len = (c < 0x80 and 1) or (c >= 0xC2 and c <= 0xDF and 2) or (c >= 0xE0 and c <= 0xEF and 3)
                or (c >= 0xF0 and c <= 0xF4 and 4) or 0
    local ok = len > 0 and i + len - 1 <= n
    for k = i + 1, i + len - 1 do
      local b = string.byte(s, k)
      if not b or b < 0x80 or b > 0xBF then ok = false end
    end
    if ok then
      table.insert(out, string.sub(s, i, i + len - 1))
      i = i + len
    else
      table.insert(out, "\239\191\189")
      i = i + 1
    end
  end
  return table.concat(out)
end

local function json_string(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

local function url_decode(s)
  s = string.gsub(s, "+", " ")
  return (string.gsub(s, "%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- "cloudinary[predominant][google][]" -> "cloudinary", {"predominant", "google", ""}
local function split_key(key)
  local base, rest = string.match(key, "^([^%[%]]+)(.*)$")
  if base == nil then
    return nil
  end
  local path, pos = {}, 1
  while pos <= #rest do
    local segment, after = string.match(rest, "^%[([^%[%]]*)%]()", pos)
    if segment == nil then
      return nil
    end
    table.insert(path, segment)
    pos = after
  end
  if #path > MAX_DEPTH then
    return nil
  end
  return base, path
end

local function new_node(kind)
  return {kind = kind, keys = {}, values = {}, items = {}}
end

-- Puts `value` at base[path...]; nil on success, else why the key cannot be used.
local function assign(root, base, path, value)
  local segments = {base}
  for _, segment in ipairs(path) do
    table.insert(segments, segment)
  end
  local node = root
  for i, segment in ipairs(segments) do
    local last = i == #segments
    if node.kind == "array" then
      if not last then
        return "lists of objects (key[][name]) are not supported"
      end
      table.insert(node.items, value)
      return nil
    end
    if segment == "" then
      return "has an empty name"
    end
    local existing = node.values[segment]
    if last then
      if type(existing) == "table" then
        return "is used both as a value and as a group of keys"
      end
      if existing == nil then
        table.insert(node.keys, segment)
      end
      node.values[segment] = value
      return nil
    end
    local kind = segments[i + 1] == "" and "array" or "object"
    if existing == nil then
      existing = new_node(kind)
      table.insert(node.keys, segment)
      node.values[segment] = existing
    elseif type(existing) ~= "table" or existing.kind ~= kind then
      return "is used both as a value and as a group of keys"
    end
    node = existing
  end
  return nil
end

local function encode(node)
  if type(node) == "string" then
    return json_string(node)
  end
  local parts = {}
  if node.kind == "array" then
    for _, item in ipairs(node.items) do
      table.insert(parts, encode(item))
    end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  for _, key in ipairs(node.keys) do
    table.insert(parts, json_string(key) .. ":" .. encode(node.values[key]))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- Fields of the form dialect that take one value, and those that take named keys: the transcoder's
-- own error for a list there ("Proto field is not repeating") would not name the field.
local FORM_SCALARS = {album_id = true, filename = true, url = true, import_type = true, attachment_id = true}
local FORM_OBJECTS = {metadata = true, metadatas = true, headers = true, cloudinary = true}

local function form_shape_problem(base, path)
  if FORM_SCALARS[base] and #path > 0 then
    return "takes a single value"
  end
  if FORM_OBJECTS[base] and (#path == 0 or path[1] == "") then
    return "takes named keys (" .. base .. "[name]=value)"
  end
  return nil
end

-- application/x-www-form-urlencoded with bracket keys -> JSON text, or nil and the offending key.
local function form_to_json(body)
  local root = new_node("object")
  local pairs_seen = 0
  for pair in string.gmatch(body, "[^&]+") do
    pairs_seen = pairs_seen + 1
    if pairs_seen > MAX_PAIRS then
      return nil, "(body)", "has more than " .. MAX_PAIRS .. " fields"
    end
    local raw_key, raw_value = string.match(pair, "^([^=]*)=?(.*)$")
    local key = url_decode(raw_key)
    local base, path = split_key(key)
    if base == nil then
      return nil, key, "is not a valid field name (expected name, name[key] or name[])"
    end
    local problem = form_shape_problem(base, path) or assign(root, base, path, url_decode(raw_value))
    if problem ~= nil then
      return nil, key, problem
    end
  end
  return encode(root)
end

-- The REST routes of the protos' google.api.http annotations: path template, verb, and whether the
-- SharinPix form dialect is accepted. tests/unit/gateway checks this list against the descriptor.
-- It lets the edge answer 405 with `Allow` (the transcoder only knows "no such method": 404).
local ROUTES = {
  {"POST", "/api/v1/albums/{album_id}/images", form = true},
  {"GET", "/api/v1/albums/{album_id}/images"},
  {"GET", "/api/v1/albums/{album_id}/images/{id}"},
  {"GET", "/api/v1/images/{media_id}"},
  {"GET", "/api/v1/images/{media_id}/{rendition}"},
  {"POST", "/api/v1/import/images"},
  {"GET", "/api/v1/import/images/status"},
  {"GET", "/api/v1/import/jobs/{id}"},
  {"GET", "/api/v1/import/jobs"},
  {"POST", "/api/v1/import/jobs/{id}:cancel"},
  {"GET", "/api/v1/import/images/status/stream"},
  {"GET", "/ready"},
  {"POST", "/api/v1/imports", form = true},
  {"GET", "/api/v1/imports/{id}"},
  {"GET", "/api/v1/webhooks/deliveries"},
  {"GET", "/api/v1/webhooks/deliveries/{id}"},
  {"POST", "/api/v1/webhooks/deliveries/{id}:redeliver"},
  -- Served by the edge itself (a direct response), not transcoded.
  {"GET", "/api/v1/openapi.json"},
}

local function template_pattern(template)
  local literal = string.gsub(template, "[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
  return "^" .. string.gsub(literal, "{[^}]+}", "[^/:]+") .. "$"
end

for _, route in ipairs(ROUTES) do
  route.pattern = template_pattern(route[2])
end

-- The methods allowed on `path` ({GET = true, ...}), whether forms are accepted there, or nil when
-- no API route has this path.
local function route_for(path, method)
  local allowed, form = nil, false
  for _, route in ipairs(ROUTES) do
    if string.find(path, route.pattern) then
      allowed = allowed or {}
      allowed[route[1]] = true
      if route[1] == method and route.form then form = true end
    end
  end
  return allowed, form
end

local function allow_header(allowed)
  local methods = {}
  for _, method in ipairs({"GET", "HEAD", "POST"}) do
    if allowed[method] or (method == "HEAD" and allowed.GET) then table.insert(methods, method) end
  end
  return table.concat(methods, ", ")
end

-- The one error shape (README "Errors"): HTTP status, gRPC status name, message, request id and
-- google.rpc details. The local_reply_config mappers build the same shape for Envoy's own replies.
local STATUS_NAMES = {[400] = "INVALID_ARGUMENT", [401] = "UNAUTHENTICATED", [403] = "PERMISSION_DENIED",
                      [404] = "NOT_FOUND", [405] = "UNIMPLEMENTED", [409] = "ABORTED",
                      [413] = "RESOURCE_EXHAUSTED", [415] = "INVALID_ARGUMENT", [429] = "RESOURCE_EXHAUSTED",
                      [500] = "INTERNAL", [503] = "UNAVAILABLE"}
local GRPC_NAMES = {[0] = "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                    "UNAUTHENTICATED"}

-- Text for an error body: JSON-escaped, and valid UTF-8 whatever bytes the caller sent.
local function json_text(s)
  return json_string(valid_utf8(s))
end

local function error_body(status, message, request_id, reason, field, description)
  local details = '{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":' .. json_text(reason)
                  .. ',"domain":"pixport"}'
  if field ~= nil then
    details = details .. ',{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":'
              .. json_text(field) .. ',"description":' .. json_text(description or message) .. '}]}'
  end
  return '{"code":' .. status .. ',"status":"' .. (STATUS_NAMES[status] or "UNKNOWN") .. '","message":'
         .. json_text(message) .. ',"requestId":' .. json_text(request_id or "") .. ',"details":['
         .. details .. ']}'
end

-- Answers at once with the error shape; `extra` may name the `field` at fault and an `allow` header.
local function reject(request_handle, request_id, status, reason, message, extra)
  extra = extra or {}
  -- Tells local_reply_config to keep this body: it already has the error shape.
  request_handle:streamInfo():dynamicMetadata():set("pixport", "error_body", true)
  local headers = {[":status"] = tostring(status), ["content-type"] = "application/json"}
  if extra.allow then headers["allow"] = extra.allow end
  request_handle:respond(headers, error_body(status, message, request_id, reason, extra.field, extra.description))
end

-- JSON syntax, strictly (RFC 8259): the transcoder's parser accepts single quotes and trailing commas
-- and then reports field errors. Also the batch body's shape: a list where one value belongs, or an
-- object where a list belongs (the transcoder would take an object as a one-element list).
local BATCH_SINGLE = {systemName = true, system_name = true, webhook = true, requestId = true,
                      request_id = true, context = true}
local IMAGE_SINGLE = {url = true, id = true, fileName = true, file_name = true, metadata = true,
                      mediaType = true, media_type = true}
local BATCH_LISTS = {images = true}

local function skip_ws(text, i)
  return string.find(text, "[^ \t\r\n]", i) or (#text + 1)
end

-- `path`: the JSON path of the value being read ("" at the top), so the caller learns where.
local function syntax(i, what, path)
  error({at = i, what = what, path = path ~= "" and path or nil}, 0)
end

local function unexpected(text, i, path)
  local c = string.sub(text, i, i)
  if c == "" then syntax(i, "unexpected end of the body", path) end
  if c == "'" then syntax(i, "strings and names take double quotes, not single quotes", path) end
  if string.byte(c) >= 0x80 or string.find(c, "%c") then
    syntax(i, string.format("unexpected byte 0x%02x", string.byte(c)), path)
  end
  syntax(i, "unexpected character " .. c, path)
end

local function end_of_string(text, i, path)  -- i at the opening quote; returns the index after the closing one
  local j = i + 1
  while true do
    local k = string.find(text, '["\\%c]', j)
    if k == nil then syntax(i, "unterminated string", path) end
    local c = string.sub(text, k, k)
    if c == '"' then return k + 1 end
    if c ~= "\\" then syntax(k, "control character in a string (escape it, e.g. \\u0000)", path) end
    j = k + 2
  end
end

local function scalar_end(text, i, path)
  local stop = string.find(text, "[,:{}%[%] \t\r\n\"]", i) or (#text + 1)
  local token = string.sub(text, i, stop - 1)
  if token == "true" or token == "false" or token == "null" then return stop end
  if string.find(token, "^-?%d+%.?%d*[eE]?[-+]?%d*$") and tonumber(token) ~= nil
      and not string.find(token, "^-?0%d") then
    return stop
  end
  unexpected(text, i, path)
end

-- Walks a JSON value; returns the index after it. `schema` names the fields that take one value and
-- those that take a list (nil: not checked). Raises {field, problem} or {at, what}.
local function walk(text, i, path, schema, depth)
  if depth > 200 then syntax(i, "nested too deeply", path) end
  i = skip_ws(text, i)
  local c = string.sub(text, i, i)
  if c == "{" then
    i = skip_ws(text, i + 1)
    if string.sub(text, i, i) == "}" then return i + 1 end
    while true do
      if string.sub(text, i, i) ~= '"' then unexpected(text, i, path) end
      local after = end_of_string(text, i, path)
      local key = string.sub(text, i + 1, after - 2)
      i = skip_ws(text, after)
      if string.sub(text, i, i) ~= ":" then unexpected(text, i, path) end
      i = skip_ws(text, i + 1)
      local field = path == "" and key or (path .. "." .. key)
      local value = string.sub(text, i, i)
      if schema ~= nil and schema.single[key] and value == "[" then
        error({field = field, problem = "takes a single value, not a list"}, 0)
      end
      local child = nil
      if schema ~= nil and schema.lists[key] then
        if value == "{" then
          error({field = field, problem = "must be a list ([...]), not an object"}, 0)
        end
        child = {single = IMAGE_SINGLE, lists = {}, items = true}
      end
      i = skip_ws(text, walk(text, i, field, child, depth + 1))
      c = string.sub(text, i, i)
      if c == "}" then return i + 1 end
      if c ~= "," then unexpected(text, i, path) end
      i = skip_ws(text, i + 1)
      if string.sub(text, i, i) == "}" then syntax(i, "trailing comma before }", path) end
    end
  elseif c == "[" then
    local index = 0
    i = skip_ws(text, i + 1)
    if string.sub(text, i, i) == "]" then return i + 1 end
    while true do
      local element = nil
      if schema ~= nil and schema.items then element = {single = schema.single, lists = schema.lists} end
      i = skip_ws(text, walk(text, i, path .. "[" .. index .. "]", element, depth + 1))
      index = index + 1
      c = string.sub(text, i, i)
      if c == "]" then return i + 1 end
      if c ~= "," then unexpected(text, i, path) end
      i = skip_ws(text, i + 1)
      if string.sub(text, i, i) == "]" then syntax(i, "trailing comma before ]", path) end
    end
  elseif c == '"' then
    return end_of_string(text, i, path)
  end
  return scalar_end(text, i, path)
end

-- nil when `text` is a well-formed JSON object (of the batch shape, for the batch endpoint); else the
-- problem: {field, problem} or {at, what}.
local function json_problem(text, batch)
  local schema = batch and {single = BATCH_SINGLE, lists = BATCH_LISTS} or nil
  local ok, problem = pcall(function()
    local start = skip_ws(text, 1)
    if string.sub(text, start, start) ~= "{" then
      if start > #text then syntax(start, "the body is empty", "") end
      syntax(start, "the body must be a JSON object ({...})", "")
    end
    local stop = skip_ws(text, walk(text, start, "", schema, 0))
    if stop <= #text then syntax(stop, "unexpected content after the JSON object", "") end
  end)
  if ok then return nil end
  if type(problem) ~= "table" then return {at = 1, what = tostring(problem)} end
  return problem
end

-- Image bytes are embedded in pages and pass through CDNs and caches, which add their own query
-- parameters (`?format=auto`, cache-busters): keep only the one the method knows.
local IMAGE_BYTES = "^/api/v1/images/[^/]+/[^/]+$"
local IMAGE_BYTES_PARAMS = {v = true}

local function known_image_params(query)
  local kept = {}
  for pair in string.gmatch(string.sub(query, 2), "[^&]+") do
    local name = url_decode(string.match(pair, "^([^=]*)"))
    if IMAGE_BYTES_PARAMS[name] then table.insert(kept, pair) end
  end
  return #kept > 0 and ("?" .. table.concat(kept, "&")) or ""
end

local function media_type(content_type)
  return string.lower(string.match(content_type or "", "^%s*([^;%s]*)") or "")
end

local FORM = "application/x-www-form-urlencoded"

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local request_id = headers:get("x-request-id") or ""
  local metadata = request_handle:streamInfo():dynamicMetadata()
  metadata:set("pixport", "request_id", request_id)
  local ok, started = pcall(function() return request_handle:timestamp() end)
  if ok and started ~= nil then
    metadata:set("pixport", "started_ms", started)
  end
  -- The access log shows the method the caller used, not the one rewritten below (HEAD → GET).
  metadata:set("pixport", "method", headers:get(":method"))

  -- Rails-style tolerance for a trailing slash (the album image API documents `/images/`).
  local path = headers:get(":path") or ""
  local bare, query = string.match(path, "^([^?]*)(.*)$")
  if #bare > 1 and string.sub(bare, -1) == "/" and string.sub(bare, 1, 5) == "/api/" then
    bare = string.sub(bare, 1, -2)
    headers:replace(":path", bare .. query)
    pcall(function() request_handle:clearRouteCache() end)
  end
  if query ~= "" and string.find(bare, IMAGE_BYTES) then
    headers:replace(":path", bare .. known_image_params(query))
  end

  local method = headers:get(":method")
  local allowed, form_route = route_for(bare, method)
  if allowed == nil then
    return  -- not an API path: the transcoder answers 404, or another route serves it
  end
  -- HEAD is answered as GET; Envoy drops the body of a response to a HEAD request.
  if method == "HEAD" and allowed.GET then
    headers:replace(":method", "GET")
    method = "GET"
  end
  if not allowed[method] then
    local allow = allow_header(allowed)
    reject(request_handle, request_id, 405, "METHOD_NOT_ALLOWED",
           method .. " is not allowed on " .. bare .. " (allowed: " .. allow .. ")", {allow = allow})
    return
  end
  if bare == "/api/v1/import/jobs" then
    metadata:set("pixport", "list_jobs", true)
  end
  if method ~= "POST" then
    return
  end

  local content_type = media_type(headers:get("content-type"))
  local takes = form_route and ("application/json or " .. FORM) or "application/json"
  if content_type == FORM and form_route then
    -- Headers must be changed before body(): the headers object is not usable after it.
    headers:replace("content-type", "application/json")
    headers:remove("content-length")
    local body = request_handle:body()
    local text = body and body:getBytes(0, body:length()) or ""
    local json, key, problem = form_to_json(text)
    if json == nil then
      reject(request_handle, request_id, 400, "MALFORMED_FORM",
             "malformed form body: field " .. key .. " " .. problem, {field = key, description = problem})
      return
    end
    if body then
      body:setBytes(json)
    end
    return
  end
  if content_type ~= "" and content_type ~= "application/json" then
    reject(request_handle, request_id, 415, "UNSUPPORTED_MEDIA_TYPE",
           "POST " .. bare .. " takes Content-Type " .. takes .. ", not " .. content_type)
    return
  end
  local body = request_handle:body()
  local text = body and body:getBytes(0, body:length()) or ""
  if text == "" and string.find(bare, ":[a-z]+$") then
    return  -- custom methods (:cancel, :redeliver) need no body
  end
  local problem = json_problem(text, bare == "/api/v1/import/images")
  if problem ~= nil and problem.field ~= nil then
    reject(request_handle, request_id, 400, "INVALID_SHAPE",
           "invalid request: " .. problem.field .. " " .. problem.problem,
           {field = problem.field, description = problem.problem})
  elseif problem ~= nil then
    local where = problem.path and (" in " .. problem.path) or ""
    reject(request_handle, request_id, 400, "MALFORMED_JSON",
           "malformed JSON body: " .. problem.what .. where .. " (at byte " .. problem.at .. ")",
           {field = problem.path, description = problem.what})
  end
end

-- The raw (still JSON-escaped) value of the first "message" string in a JSON document.
local function json_message(text)
  local start = string.find(text, '"message":"', 1, true)
  if start == nil then
    return nil
  end
  local i, out = start + 11, {}
  while i <= #text do
    local c = string.sub(text, i, i)
    if c == "\\" then
      table.insert(out, string.sub(text, i, i + 1))
      i = i + 2
    elseif c == '"' then
      return table.concat(out)
    else
      table.insert(out, c)
      i = i + 1
    end
  end
  return nil
end

-- A server error as the transcoder prints it (a google.rpc.Status: `{"code":<gRPC code>,"message":...,
-- "details":[...]}`) in the one error shape; nil for anything else.
local function status_in_error_shape(text, http_status, request_id)
  local code, rest = string.match(text, '^{"code":(%d+),(".*)$')
  if code == nil or tonumber(code) > 16 then
    return nil
  end
  return '{"code":' .. http_status .. ',"status":"' .. GRPC_NAMES[tonumber(code)] .. '","requestId":'
         .. json_string(request_id or "") .. "," .. rest
end

function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  -- REST callers never see gRPC's own headers (the transcoder has read them by now).
  headers:remove("grpc-status")
  headers:remove("grpc-message")
  headers:remove("grpc-status-details-bin")

  local metadata = response_handle:streamInfo():dynamicMetadata():get("pixport") or {}
  local ok, now = pcall(function() return response_handle:timestamp() end)
  if metadata["started_ms"] ~= nil and ok and now ~= nil then
    headers:replace("x-runtime", string.format("%.6f", (now - metadata["started_ms"]) / 1000))
  end
  if headers:get("x-pixport-not-modified") ~= nil then
    headers:remove("x-pixport-not-modified")
    headers:replace(":status", "304")
    headers:remove("content-type")
    headers:remove("content-length")
  end
  local json = string.find(headers:get("content-type") or "", "^application/json") ~= nil
  if headers:get("content-type") == "application/json" then
    headers:replace("content-type", "application/json; charset=utf-8")
  end
  local status = tonumber(headers:get(":status")) or 0
  if not json or metadata["error_body"] or (status < 400 and not metadata["list_jobs"]) then
    return
  end

  -- Headers first: the headers object is not usable after body().
  headers:remove("content-length")
  local body = response_handle:body()
  local text = body and body:getBytes(0, body:length()) or ""
  if status == 200 then
    -- The job list's default view has no images: show the counts (`overview`), not `"images":[]`.
    body:setBytes((string.gsub(text, ',"images":%[%]', "")))
    return
  end
  -- Over quota: the batch import API's documented 429 body, a list with one error object.
  -- Only pixport's own quota refusal: other RESOURCE_EXHAUSTED errors keep the error shape.
  local message = status == 429 and string.find(text, '"reason":"USAGE_LIMIT_EXCEEDED"', 1, true)
                  and json_message(text)
  if message then
    body:setBytes('[{"status":429,"error":"Usage Limit Exceeded","error_details":{"message":"' .. message .. '"}}]')
    return
  end
  local shaped = status_in_error_shape(text, status, metadata["request_id"])
  if shaped then
    body:setBytes(shaped)
  end
end
