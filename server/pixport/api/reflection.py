"""Server reflection that also resolves method names (`grpcurl describe pixport.v1.ImportService.GetImportJob`).

grpcio-reflection asks the descriptor pool for the file containing a symbol; the upb-backed pool knows
messages, enums, services and fields but not methods, so a method name answers "symbol not found".
This servicer falls back to the method's service, whose file is the answer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer
from grpc_reflection.v1alpha._base import _file_descriptor_response


class MethodAwareReflectionServicer(ReflectionServicer):
    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        found = super()._file_containing_symbol(request, fully_qualified_name)
        if not found.HasField("error_response") or "." not in fully_qualified_name:
            return found
        service_name, _, method_name = fully_qualified_name.rpartition(".")
        try:
            service = self._pool.FindServiceByName(service_name)
        except KeyError:
            return found
        if method_name not in service.methods_by_name:
            return found
        return _file_descriptor_response(service.file, request)


def enable_server_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    servicer = MethodAwareReflectionServicer(service_names, pool=descriptor_pool.Default())
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
