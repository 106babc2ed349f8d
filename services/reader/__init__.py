"""The reader service: analysts read feeds through it, never with their own Kafka access.

- ``scope``: what an analyst may read, and the pure decisions on a request and an event;
- ``analysts``: the operator's registry of analysts, their credentials (hashes) and scopes;
- ``app``: the HTTP API (starlette), which authenticates, applies the scope and writes the
  signed audit record of every read or refusal;
- ``client``: what ``liaison feed read`` uses to call it.
"""

__all__: list[str] = []
