-- The edge's Lua filter (runs before the gRPC-JSON transcoder).
-- REST callers must never see gRPC's own headers; the route config removes them from headers,
-- this removes them from trailers too (streamed responses end with trailers).
function envoy_on_request(request_handle)
end

function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  headers:remove("grpc-status")
  headers:remove("grpc-message")
  headers:remove("grpc-status-details-bin")
end
