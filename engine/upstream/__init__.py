"""The wire to the consumed APIs, as httpx layers it: a request model at the bottom, a transport behind it.

`request.Prepared` is what the registry builds; `client.Upstream` sends it for one consumes
namespace (base URI, redirects, digest and OAuth2 credentials, errors that name the namespace)
over the keep-alive HTTP/1.1 transport, from top to bottom:

    client       Upstream: one namespace's calls, turning `failures` into the engine's UpstreamError kinds
    pool         Pool: connections per origin, slots, connect, TLS, the proxy tunnel `proxy` picks
    connection   Connection and the Response it feeds: parsing, streamed bodies with flow control
    decoders     gzip/deflate inflated in bounded steps
    failures     HTTPFailure and its kinds, which the levels above raise
    proxy        which proxy a request goes through, read from the environment
    request      Prepared, the request model
"""

from .client import OAuth2ClientCredentials, Upstream, UpstreamResponse, is_json_type
from .proxy import Proxies, ProxyConfigError
from .request import Prepared

__all__ = [
    "Prepared",
    "Upstream",
    "UpstreamResponse",
    "OAuth2ClientCredentials",
    "Proxies",
    "ProxyConfigError",
    "is_json_type",
]
