"""The wire to the consumed APIs, as httpx layers it: a request model at the bottom, a transport behind it.

`request.Prepared` is what the registry builds; `client.Upstream` sends it for one consumes
namespace (base URI, redirects, digest and OAuth2 credentials, errors that name the namespace)
over `http1.Pool`, the keep-alive HTTP/1.1 transport, through the proxy `proxy` picks.
"""

from .client import OAuth2ClientCredentials, Upstream, UpstreamResponse, is_json_type
from .proxy import Proxies, ProxyConfigError
from .request import Prepared

__all__ = ["Prepared", "Upstream", "UpstreamResponse", "OAuth2ClientCredentials", "Proxies", "ProxyConfigError",
           "is_json_type"]
