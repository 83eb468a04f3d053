"""Upstream calls through an HTTP proxy, chosen from the environment as curl and httpx choose it:
absolute-form requests for http, CONNECT tunnels for https (TLS to a test CA named by
SSL_CERT_FILE), NO_PROXY, credentials, and a clear error when the proxy refuses or is not there.
The proxy is a real one on loopback, written below."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import ipaddress
import ssl
from pathlib import Path
from collections.abc import AsyncIterator, Mapping

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from naftiko.engine import Runtime
from naftiko.engine.errors import NaftikoError, UpstreamError
from naftiko.engine.upstream.proxy import Proxies, ProxyConfigError
from naftiko.engine.upstream.client import Upstream
from tests.support import RecordingUpstream, Reply
from tests.support import ScriptedServer, ok, send

pytestmark = pytest.mark.anyio


# --- which proxy, from which variables ------------------------------------------------------


def chosen(environ: Mapping[str, str], url: str) -> str | None:
    """The proxy `environ` gives a request to `url`, as 'scheme://host:port (VARIABLE)', or None."""
    proxies = Proxies.from_environ(environ)
    if proxies is None:
        return None
    scheme, rest = url.split("://")
    host, _, port = rest.rpartition(":")
    proxy = proxies.select((scheme, host.strip("[]"), int(port)))
    return None if proxy is None else f"{proxy.scheme}://{proxy} ({proxy.source})"


def test_variables_lower_case_first_and_cgi_safe() -> None:
    assert Proxies.from_environ({"PATH": "/bin", "NO_PROXY": "x"}) is None  # nothing set costs nothing
    assert chosen({"HTTP_PROXY": "p:3128"}, "http://a.test:80") == "http://p:3128 (HTTP_PROXY)"
    both_cases = {"HTTP_PROXY": "http://up:1", "http_proxy": "http://low:2"}
    assert chosen(both_cases, "http://a:80") == "http://low:2 (http_proxy)"
    # an empty lower-case variable switches the upper-case one off, as urllib and httpx read it
    assert chosen({"HTTPS_PROXY": "http://up:1", "https_proxy": ""}, "https://a:443") is None
    # under CGI, HTTP_PROXY may come from a request's "Proxy:" header (httpoxy): only that one is ignored
    cgi = {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://evil:1", "HTTPS_PROXY": "http://ok:2"}
    assert chosen(cgi, "http://a:80") is None and chosen(cgi, "https://a:443") == "http://ok:2 (HTTPS_PROXY)"
    assert chosen({**cgi, "http_proxy": "http://mine:3"}, "http://a:80") == "http://mine:3 (http_proxy)"
    # each scheme its own variable, ALL_PROXY for the rest; default ports by the proxy's scheme
    both = {"HTTP_PROXY": "http://h:1", "ALL_PROXY": "https://all"}
    assert chosen(both, "http://a:80") == "http://h:1 (HTTP_PROXY)"
    assert chosen(both, "https://a:443") == "https://all:443 (ALL_PROXY)"
    assert chosen({"http_proxy": "http://p"}, "http://a:80") == "http://p:80 (http_proxy)"
    assert chosen({"http_proxy": "http://[::1]:8080"}, "http://a:80") == "http://[::1]:8080 (http_proxy)"


def test_credentials_become_a_basic_proxy_authorization() -> None:
    proxies = Proxies.from_environ({"HTTPS_PROXY": "http://ada%40corp:p%3As%20w@proxy:3128"})
    assert proxies is not None
    proxy = proxies.select(("https", "api.test", 443))
    assert proxy is not None and str(proxy) == "proxy:3128"  # never the credentials
    assert proxy.authorization == "Basic " + base64.b64encode(b"ada@corp:p:s w").decode()
    assert proxy.source == "HTTPS_PROXY" and proxy.authorization not in repr(proxy) and "p%3As" not in repr(proxy)


@pytest.mark.parametrize(
    "no_proxy,url,bypassed",
    [
        ("*", "https://anything.test:443", True),
        ("example.com", "http://example.com:80", True),
        ("example.com", "http://api.example.com:80", True),
        ("example.com", "http://notexample.com:80", False),
        (".example.com", "http://example.com:80", True),  # a leading dot matches the domain too, as curl does
        (".example.com", "http://a.b.example.com:80", True),
        ("*.example.com", "http://a.example.com:80", True),
        ("EXAMPLE.com", "http://Api.Example.COM:80", True),
        ("example.com", "http://example.com.:80", True),
        ("example.com:8080", "http://example.com:8080", True),
        ("example.com:8080", "http://example.com:80", False),
        ("localhost, 10.1.2.3", "http://10.1.2.3:80", True),
        ("10.1.2.3", "http://10.1.2.30:80", False),
        ("10.0.0.0/8", "http://10.200.3.4:80", True),
        ("10.0.0.0/8", "http://11.0.0.1:80", False),
        ("10.0.0.0/8", "http://ten.test:80", False),  # networks match addresses, never names (no DNS lookup)
        ("::1", "http://[::1]:80", True),
        ("[::1]:8080", "http://[::1]:8080", True),
        ("[::1]:8080", "http://[::1]:80", False),
        ("fd00::/8", "http://[fd12::5]:80", True),
        ("0:0::1", "http://[::1]:80", True),
        ("a.test,,  ,b.test", "http://b.test:80", True),
        ("a.test", "http://b.test:80", False),
    ],
)
def test_no_proxy(no_proxy: str, url: str, bypassed: bool) -> None:
    environ = {"HTTP_PROXY": "http://p:1", "HTTPS_PROXY": "http://p:1", "NO_PROXY": no_proxy}
    assert (chosen(environ, url) is None) == bypassed
    assert chosen({**environ, "no_proxy": "other.test"}, url) is not None  # the lower-case one wins


def test_an_unusable_proxy_is_an_error_when_it_applies() -> None:
    proxies = Proxies.from_environ({"ALL_PROXY": "socks5h://127.0.0.1:1080", "NO_PROXY": "inside.test"})
    assert proxies is not None
    with pytest.raises(ProxyConfigError, match="ALL_PROXY: socks5h proxies are not supported"):
        proxies.select(("https", "outside.test", 443))
    assert proxies.select(("https", "inside.test", 443)) is None
    with pytest.raises(NaftikoError, match="proxy of 'billing': ALL_PROXY: socks5h proxies are not supported"):
        Upstream("billing", "https://api.test", 5.0, environ={"ALL_PROXY": "socks5h://u:secret@127.0.0.1:1080"})
    with pytest.raises(NaftikoError, match="HTTP_PROXY is not a valid proxy URL"):
        Upstream("billing", "http://api.test", 5.0, environ={"HTTP_PROXY": "http://p:notaport"})


# --- a real proxy on loopback ------------------------------------------------------------------


class ForwardProxy:
    """An HTTP forward proxy: absolute-form requests (one per connection) and CONNECT tunnels.

    `credentials` ("user:pass") makes it answer 407 to requests without them; `refuse` makes it
    answer CONNECT with that status. It records what it was asked."""

    def __init__(
        self, credentials: str | None = None, refuse: int | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        self.credentials, self.refuse, self.tls = credentials, refuse, tls
        self.seen: list[tuple[str, str, str | None]] = []  # method, target, Proxy-Authorization
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> ForwardProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            line, *fields = head.split("\r\n")
            method, target, _ = line.split(" ")
            headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields if f)}
            authorization = headers.get("proxy-authorization")
            self.seen.append((method, target, authorization))
            expected = None if self.credentials is None else basic(self.credentials)
            if expected is not None and authorization != expected:
                writer.write(
                    b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="t"\r\n'
                    b"Content-Length: 0\r\n\r\n"
                )
            elif method == "CONNECT":
                await self._tunnel(target, reader, writer)
            else:
                await self._forward(method, target, head, headers, reader, writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _tunnel(self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse is not None:
            writer.write(f"HTTP/1.1 {self.refuse} No\r\nContent-Length: 5\r\n\r\nrefus".encode())
            return
        host, _, port = target.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _forward(
        self,
        method: str,
        target: str,
        head: str,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        assert target.startswith("http://"), target  # a proxy is sent absolute-form targets
        authority, _, path = target[len("http://") :].partition("/")
        host, _, port = authority.rpartition(":")
        body = await reader.readexactly(int(headers.get("content-length", 0)))
        hop = ("proxy-authorization", "connection")
        kept = [f for f in head.split("\r\n")[1:] if f and not f.lower().startswith(hop)]
        request = "\r\n".join([f"{method} /{path} HTTP/1.1", *kept, "Connection: close", "", ""]).encode() + body
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        try:
            up_writer.write(request)
            answer = (await up_reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            lines = [f for f in answer.split("\r\n") if f and not f.lower().startswith("connection")]
            length = next((int(f.split(":", 1)[1]) for f in lines if f.lower().startswith("content-length:")), None)
            body = await (up_reader.read() if length is None else up_reader.readexactly(length))
            # one request per connection: the client is told so and must open another for the next
            writer.write("\r\n".join([*lines, "Connection: close", "", ""]).encode("latin-1") + body)
        finally:
            up_writer.close()

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            sink.close()


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


@contextlib.asynccontextmanager
async def client(url: str, environ: Mapping[str, str], timeout: float = 5.0) -> AsyncIterator[Upstream]:
    upstream = Upstream("t", url, timeout, environ=environ)
    try:
        yield upstream
    finally:
        await upstream.close()


# --- certificates: a test CA and a server certificate for 127.0.0.1 and localhost ----------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """(CA file, server context)."""
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "naftiko test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context


# --- through the proxy ---------------------------------------------------------------------------


async def test_an_http_upstream_is_reached_through_the_proxy_in_absolute_form_with_credentials() -> None:
    async with ScriptedServer(ok) as server, ForwardProxy(credentials="ada:s@cret") as proxy:
        environ = {"HTTP_PROXY": f"http://ada:s%40cret@127.0.0.1:{proxy.port}"}
        async with client(server.url + "/base", environ) as upstream:
            assert await (await send(upstream, "/x?q=1")).json() == {"ok": True}
            assert await (await send(upstream, "/y", "POST", body=b'{"a": 1}')).json() == {"ok": True}
    expected = basic("ada:s@cret")
    assert proxy.seen == [("GET", f"{server.url}/base/x?q=1", expected), ("POST", f"{server.url}/base/y", expected)]
    assert server.requests[0].startswith(f"GET /base/x?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n")
    assert all("proxy-authorization" not in r.lower() for r in server.requests)


async def test_an_https_upstream_is_reached_through_a_connect_tunnel(tls: tuple[Path, ssl.SSLContext]) -> None:
    ca_file, server_context = tls
    async with ScriptedServer(ok, server_context) as server, ForwardProxy(credentials="ada:pw") as proxy:
        environ = {"HTTPS_PROXY": f"ada:pw@127.0.0.1:{proxy.port}", "SSL_CERT_FILE": str(ca_file)}
        async with client(server.url, environ) as upstream:
            for _ in range(3):
                assert await (await send(upstream)).json() == {"ok": True}
    authorization = basic("ada:pw")
    assert proxy.seen == [("CONNECT", f"127.0.0.1:{server.port}", authorization)]  # one tunnel, kept alive
    assert server.connections == 1 and len(server.requests) == 3


async def test_an_https_proxy_carries_both_kinds_of_upstream(tls: tuple[Path, ssl.SSLContext]) -> None:
    ca_file, context = tls
    async with ScriptedServer(ok) as plain, ScriptedServer(ok, context) as secure, ForwardProxy(tls=context) as proxy:
        environ = {"ALL_PROXY": proxy.url, "SSL_CERT_FILE": str(ca_file)}
        async with client(plain.url, environ) as upstream:
            assert await (await send(upstream)).json() == {"ok": True}
        async with client(secure.url, environ) as upstream:  # TLS to the origin inside TLS to the proxy
            assert await (await send(upstream)).json() == {"ok": True}
    assert [method for method, _, _ in proxy.seen] == ["GET", "CONNECT"]


async def test_no_proxy_goes_direct() -> None:
    async with ScriptedServer(ok) as server, ForwardProxy() as proxy:
        for no_proxy in ("127.0.0.1", "localhost,127.0.0.0/8", f"127.0.0.1:{server.port}", "*"):
            environ = {"HTTP_PROXY": f"http://127.0.0.1:{proxy.port}", "NO_PROXY": no_proxy}
            async with client(server.url, environ) as upstream:
                assert await (await send(upstream)).json() == {"ok": True}
        environ = {"HTTP_PROXY": f"http://127.0.0.1:{proxy.port}", "NO_PROXY": "127.0.0.1:1"}
        async with client(server.url, environ) as upstream:
            assert await (await send(upstream)).json() == {"ok": True}
    assert len(server.requests) == 5 and len(proxy.seen) == 1


@pytest.mark.parametrize(
    "refuse,status", [(None, "407 Proxy Authentication Required"), (403, "403 Forbidden"), (502, "502 Bad Gateway")]
)
async def test_a_refused_tunnel_is_an_upstream_error_naming_the_proxy_and_its_status(
    tls: tuple[Path, ssl.SSLContext], refuse: int | None, status: str
) -> None:
    ca_file, context = tls
    async with ScriptedServer(ok, context) as server, ForwardProxy("ada:right", refuse) as proxy:
        environ = {"HTTPS_PROXY": f"http://ada:wrong-secret@127.0.0.1:{proxy.port}", "SSL_CERT_FILE": str(ca_file)}
        if refuse is not None:
            environ["HTTPS_PROXY"] = f"http://ada:right@127.0.0.1:{proxy.port}"
        async with client(server.url, environ) as upstream:
            with pytest.raises(UpstreamError) as caught:
                await send(upstream)
    message = str(caught.value)
    assert message == (
        f"upstream t (op): the proxy 127.0.0.1:{proxy.port} (from HTTPS_PROXY) refused the tunnel "
        f"to 127.0.0.1:{server.port}: HTTP {status}"
    )
    assert "secret" not in message and "right" not in message
    assert server.connections == 0


async def test_a_refused_forward_is_an_upstream_error_too() -> None:
    async with ScriptedServer(ok) as server, ForwardProxy("ada:right") as proxy:
        environ = {"http_proxy": f"http://ada:wrong-secret@127.0.0.1:{proxy.port}"}
        async with client(server.url, environ) as upstream:
            with pytest.raises(
                UpstreamError,
                match=rf"the proxy 127.0.0.1:{proxy.port} \(from http_proxy\) refused "
                r"the request: HTTP 407 Proxy Authentication Required$",
            ) as caught:
                await send(upstream)
    assert "secret" not in str(caught.value) and server.requests == []


async def test_an_unreachable_proxy_is_named() -> None:
    closed = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    async with ScriptedServer(ok) as server:
        for variable, url in (("HTTP_PROXY", server.url), ("HTTPS_PROXY", "https://127.0.0.1:1")):
            async with client(url, {variable: f"http://u:secret@127.0.0.1:{port}"}) as upstream:
                with pytest.raises(
                    UpstreamError,
                    match=rf"cannot connect to the proxy 127.0.0.1:{port} "
                    rf"\(from {variable}\): Connection refused",
                ) as caught:
                    await send(upstream)
                assert "secret" not in str(caught.value)


async def test_a_tls_upstream_is_trusted_through_ssl_cert_file(
    tls: tuple[Path, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file, context = tls
    async with ScriptedServer(ok, context) as server:
        async with client(server.url, {}) as upstream:  # the test CA is nobody's default
            with pytest.raises(UpstreamError, match="TLS failed .*CERTIFICATE_VERIFY_FAILED"):
                await send(upstream)
        async with client(server.url, {"SSL_CERT_FILE": str(ca_file)}) as upstream:  # the runtime's environment
            assert await (await send(upstream)).json() == {"ok": True}
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # or the process's, read by OpenSSL itself
        async with client(server.url, {}) as upstream:
            assert await (await send(upstream)).json() == {"ok": True}
        async with client(server.url, {"SSL_CERT_FILE": "/nonexistent/ca.pem", "SSL_CERT_DIR": ""}) as upstream:
            with pytest.raises(UpstreamError, match="cannot load the CA certificates of SSL_CERT_FILE=/nonexistent"):
                await send(upstream)


# --- end to end: the runtime's environment routes its calls --------------------------------

CAPABILITY = """\
naftiko: 1.0.0-alpha2
capability:
  exposes:
    - type: rest
      port: 9192
      namespace: shop-rest
      resources:
        - path: /items
          operations:
            - {method: GET, call: shop.list-items}
  consumes:
    - type: http
      namespace: shop
      baseUri: http://localhost:1
      resources:
        - path: /items
          name: items
          operations:
            - {method: GET, name: list-items}
"""


async def test_the_runtime_environment_routes_calls_through_the_proxy(
    tmp_path: Path, upstream: RecordingUpstream
) -> None:
    upstream.reply("GET", "/items", Reply(json={"items": [1, 2]}))
    (tmp_path / "shop.yaml").write_text(CAPABILITY)
    async with ForwardProxy(credentials="ada:pw") as proxy:
        environ = {"HTTP_PROXY": f"http://ada:pw@127.0.0.1:{proxy.port}"}
        runtime = Runtime.load(tmp_path / "shop.yaml", environ=environ, base_uris={"shop": upstream.url})
        async with runtime:
            assert await runtime.call("shop.list-items", {}) == (200, {"items": [1, 2]})
    assert proxy.seen == [("GET", f"{upstream.url}/items", basic("ada:pw"))]
    assert "proxy-authorization" not in upstream.last.headers


async def test_naftiko_serve_behind_a_proxy_and_a_refusing_one(
    tmp_path: Path, upstream: RecordingUpstream, naftiko
) -> None:
    upstream.reply("GET", "/items", Reply(json={"items": [1, 2]}))
    (tmp_path / "shop.yaml").write_text(CAPABILITY)
    args = (str(tmp_path / "shop.yaml"), "--base-uri", f"shop={upstream.url}", "--port", "shop-rest=0")
    async with ForwardProxy(credentials="ada:pw") as proxy, httpx.AsyncClient(timeout=10) as http:
        served = naftiko(*args, env={"HTTP_PROXY": f"http://ada:pw@127.0.0.1:{proxy.port}", "NO_PROXY": ""})
        url = (await asyncio.to_thread(served.wait_for, "shop-rest"))["shop-rest"]
        reply = await http.get(url + "/items")
        assert (reply.status_code, reply.json()) == (200, {"items": [1, 2]})
        assert proxy.seen == [("GET", f"{upstream.url}/items", basic("ada:pw"))]

        refused = naftiko(*args, env={"HTTP_PROXY": f"http://ada:bad-secret@127.0.0.1:{proxy.port}", "NO_PROXY": ""})
        url = (await asyncio.to_thread(refused.wait_for, "shop-rest"))["shop-rest"]
        reply = await http.get(url + "/items")
        assert reply.status_code == 502
        message = reply.json()["error"]["message"]
        assert f"the proxy 127.0.0.1:{proxy.port} (from HTTP_PROXY) refused the request: HTTP 407" in message
        assert "bad-secret" not in reply.text
    assert "bad-secret" not in "\n".join(refused.log) and "Traceback" not in "\n".join(refused.log)
