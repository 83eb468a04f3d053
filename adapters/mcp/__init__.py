"""The MCP adapter: a capability's `exposes: type: mcp` block served over Streamable HTTP or stdio.

A transport decodes one JSON-RPC message, decides its protocol era and hands it to the
dispatcher, which answers from a backend; `capability` builds that backend from a loaded
runtime. From top to bottom:

    capability   CapabilityBackend over one exposes block; `mcp_http_app`, `serve_stdio`
    http         McpHttpApp: the Streamable HTTP transport, statuses per era
    stdio        serve_stdio: newline-delimited JSON-RPC, requests run concurrently
    guards       the endpoint's paths, Host and Origin allow-lists, JSON-only bodies
    sessions     the handshake era's Mcp-Session-Id: a signed token any instance with the secret accepts
    headers      the request headers, and the modern era's rule that they repeat the body
    protocol     McpProtocol: JSON-RPC dispatch in both eras, over any McpBackend
    listings     the fixed lists in their wire form, cut into pages
    eras         protocol versions, which era a message speaks, the modern `_meta` envelope
    jsonrpc      one message decoded from, or encoded to, its JSON text
    tools        a capability's tools: input schemas, hints, results
    prompts      a capability's prompts: listing and rendering
    resources    a capability's resources: listing, dynamic and file reads
    outputs      what a tool answers: outputSchema per era, results held to it, binary content
    errors       ERRORS, the one table of this edge: each error kind as an isError result or JSON-RPC error
    schema       the JSON Schema subset that checks tool arguments
    backend      the data and the McpBackend protocol the protocol layer sees, McpError

The protocol side (http, stdio down to jsonrpc) knows nothing of capability files: it sees
only `backend`, so it is tested with a small fake backend.
"""
