-- The edge's Lua filter (runs before the gRPC-JSON transcoder on requests, after it on responses).

-- The raw (still JSON-escaped) value of the first "message" string in a JSON document.
local function json_message(text)
  local start = string.find(text, '"message":"', 1, true)
  if start == nil then
    return nil
  end
  local i = start + 11
  local out = {}
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

function envoy_on_request(request_handle)
end

function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  -- REST callers never see gRPC's own headers (the transcoder has read them by now).
  headers:remove("grpc-status")
  headers:remove("grpc-message")
  headers:remove("grpc-status-details-bin")

  -- Over quota: the batch import API's documented 429 body, a list with one error object.
  if headers:get(":status") == "429" then
    local body = response_handle:body()
    local message = body and json_message(body:getBytes(0, body:length()))
    if message ~= nil then
      local seed = '[{"status":429,"error":"Usage Limit Exceeded","error_details":{"message":"' .. message .. '"}}]'
      body:setBytes(seed)
      headers:replace("content-length", tostring(#seed))
      headers:replace("content-type", "application/json")
    end
  end
end
