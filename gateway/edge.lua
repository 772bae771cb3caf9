-- The edge's Lua filter: runs before the gRPC-JSON transcoder on requests, after it on responses.

local MAX_PAIRS = 2000
local MAX_DEPTH = 8

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

-- A local reply: the edge's local_reply_config wraps the text into its JSON error body.
-- The batch import body's fields that are not lists (camelCase and proto spellings; unknown fields are
-- ignored, as the transcoder ignores them). Free-form objects (context, metadata) are not looked into.
local BATCH_SINGLE = {systemName = true, system_name = true, webhook = true, requestId = true,
                      request_id = true, context = true}
local IMAGE_SINGLE = {url = true, id = true, fileName = true, file_name = true, metadata = true,
                      mediaType = true, media_type = true}
local BATCH_LISTS = {images = true}

local function skip_ws(text, i)
  return string.find(text, "[^ \t\r\n]", i) or (#text + 1)
end

local function end_of_string(text, i)  -- i at the opening quote; returns the index after the closing one
  local j = i + 1
  while true do
    local k = string.find(text, '["\\]', j)
    if k == nil then error("unterminated string") end
    if string.sub(text, k, k) == '"' then return k + 1 end
    j = k + 2
  end
end

-- Walks a JSON value; returns the index after it. `schema` names the fields that must not be lists
-- (nil: not checked). Raises {field = ...} for the first list where a single value belongs.
local function walk(text, i, path, schema, depth)
  if depth > 200 then error("too deep") end
  i = skip_ws(text, i)
  local c = string.sub(text, i, i)
  if c == "{" then
    i = skip_ws(text, i + 1)
    if string.sub(text, i, i) == "}" then return i + 1 end
    while true do
      if string.sub(text, i, i) ~= '"' then error("malformed") end
      local after = end_of_string(text, i)
      local key = string.sub(text, i + 1, after - 2)
      i = skip_ws(text, after)
      if string.sub(text, i, i) ~= ":" then error("malformed") end
      i = skip_ws(text, i + 1)
      local field = path == "" and key or (path .. "." .. key)
      if schema ~= nil and schema.single[key] and string.sub(text, i, i) == "[" then
        error({field = field})
      end
      local child = nil
      if schema ~= nil and schema.lists[key] then child = {single = IMAGE_SINGLE, lists = {}, items = true} end
      i = walk(text, i, field, child, depth + 1)
      i = skip_ws(text, i)
      c = string.sub(text, i, i)
      if c == "}" then return i + 1 end
      if c ~= "," then error("malformed") end
      i = skip_ws(text, i + 1)
    end
  elseif c == "[" then
    local index = 0
    i = skip_ws(text, i + 1)
    if string.sub(text, i, i) == "]" then return i + 1 end
    while true do
      local element = nil
      if schema ~= nil and schema.items then element = {single = schema.single, lists = schema.lists} end
      i = walk(text, i, path .. "[" .. index .. "]", element, depth + 1)
      index = index + 1
      i = skip_ws(text, i)
      c = string.sub(text, i, i)
      if c == "]" then return i + 1 end
      if c ~= "," then error("malformed") end
      i = i + 1
    end
  elseif c == '"' then
    return end_of_string(text, i)
  end
  local stop = string.find(text, "[,}%] \t\r\n]", i) or (#text + 1)
  if stop == i then error("malformed") end
  return stop
end

-- The batch field given as a list where one value belongs, or nil (malformed JSON is left to the
-- transcoder, which explains it).
local function batch_list_misuse(text)
  local ok, problem = pcall(walk, text, 1, "", {single = BATCH_SINGLE, lists = BATCH_LISTS}, 0)
  if not ok and type(problem) == "table" then
    return problem.field
  end
  return nil
end

local function reject(request_handle, status, message)
  request_handle:respond({[":status"] = tostring(status), ["content-type"] = "text/plain"}, message)
end

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local ok, started = pcall(function() return request_handle:timestamp() end)
  if ok and started ~= nil then
    request_handle:streamInfo():dynamicMetadata():set("pixport", "started_ms", started)
  end

  -- HEAD on image bytes is answered as GET; Envoy drops the body of a response to a HEAD request.
  local method = headers:get(":method")
  -- The access log shows the method the caller used, not the rewritten one.
  request_handle:streamInfo():dynamicMetadata():set("pixport", "method", method)
  if method == "HEAD" and string.find(headers:get(":path") or "", "^/api/v1/images/[^/?]+/[^/?]+") then
    headers:replace(":method", "GET")
  end

  -- Rails-style tolerance for a trailing slash (the album image API documents `/images/`).
  local path = headers:get(":path") or ""
  local bare, query = string.match(path, "^([^?]*)(.*)$")
  if #bare > 1 and string.sub(bare, -1) == "/" and string.sub(bare, 1, 5) == "/api/" then
    headers:replace(":path", string.sub(bare, 1, -2) .. query)
    pcall(function() request_handle:clearRouteCache() end)
  end

  local content_type = string.lower(headers:get("content-type") or "")
  if string.find(content_type, "application/x-www-form-urlencoded", 1, true) == 1 then
    -- Headers must be changed before body(): the headers object is not usable after it.
    headers:replace("content-type", "application/json")
    headers:remove("content-length")
    local body = request_handle:body()
    local text = body and body:getBytes(0, body:length()) or ""
    local json, key, problem = form_to_json(text)
    if json == nil then
      reject(request_handle, 400, "malformed form body: field " .. key .. " " .. problem)
      return
    end
    if body then
      body:setBytes(json)
    end
  elseif headers:get(":method") == "POST" and bare == "/api/v1/import/images" then
    local body = request_handle:body()
    local field = body and batch_list_misuse(body:getBytes(0, body:length()))
    if field then
      reject(request_handle, 400, "invalid request: " .. field .. " takes a single value, not a list")
      return
    end
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

function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  -- REST callers never see gRPC's own headers (the transcoder has read them by now).
  headers:remove("grpc-status")
  headers:remove("grpc-message")
  headers:remove("grpc-status-details-bin")

  local metadata = response_handle:streamInfo():dynamicMetadata():get("pixport")
  local ok, now = pcall(function() return response_handle:timestamp() end)
  if metadata ~= nil and metadata["started_ms"] ~= nil and ok and now ~= nil then
    headers:replace("x-runtime", string.format("%.6f", (now - metadata["started_ms"]) / 1000))
  end
  if headers:get("x-pixport-not-modified") ~= nil then
    headers:remove("x-pixport-not-modified")
    headers:replace(":status", "304")
    headers:remove("content-type")
    headers:remove("content-length")
  end
  if headers:get("content-type") == "application/json" then
    headers:replace("content-type", "application/json; charset=utf-8")
  end

  -- Over quota: the batch import API's documented 429 body, a list with one error object.
  -- (Headers first: the headers object is not usable after body().)
  if headers:get(":status") == "429" then
    headers:remove("content-length")
    local body = response_handle:body()
    local text = body and body:getBytes(0, body:length()) or ""
    -- Only pixport's own quota refusal: other RESOURCE_EXHAUSTED errors keep their status JSON.
    local message = string.find(text, '"reason":"USAGE_LIMIT_EXCEEDED"', 1, true) and json_message(text)
    if message then
      body:setBytes('[{"status":429,"error":"Usage Limit Exceeded","error_details":{"message":"' .. message .. '"}}]')
    end
  end
end
