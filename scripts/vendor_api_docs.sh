#!/usr/bin/env bash
# Refreshes the vendored browser files of the API docs (chalicelib/http/apidocs/static/) from the npm
# registry: Swagger UI (swagger-ui-dist) and ReDoc (redoc). They are committed, so neither the
# Lambda nor a browser ever fetches them from a CDN; run this only to change their versions.
#   scripts/vendor_api_docs.sh [SWAGGER_UI_VERSION] [REDOC_VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
swagger_ui="${1:-5.35.0}"
redoc="${2:-2.5.4}"
target=chalicelib/http/apidocs/static
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "swagger-ui-dist@$swagger_ui" "redoc@$redoc" >/dev/null)
mkdir -p "$work/swagger-ui" "$work/redoc" "$target"
tar xzf "$work/swagger-ui-dist-$swagger_ui.tgz" -C "$work/swagger-ui" --strip-components=1
tar xzf "$work/redoc-$redoc.tgz" -C "$work/redoc" --strip-components=1

cp "$work/swagger-ui/swagger-ui-bundle.js" "$work/swagger-ui/swagger-ui.css" "$target/"
cp "$work/swagger-ui/LICENSE" "$target/swagger-ui.LICENSE"
cp "$work/swagger-ui/swagger-ui-bundle.js.LICENSE.txt" "$target/swagger-ui-bundle.js.LICENSE.txt"
cp "$work/redoc/bundles/redoc.standalone.js" "$target/"
cp "$work/redoc/bundles/redoc.standalone.js.LICENSE.txt" "$target/redoc.standalone.js.LICENSE.txt"
cp "$work/redoc/LICENSE" "$target/redoc.LICENSE"
# The bundles end with a source map comment; the maps are not vendored, so browsers must not ask.
sed -i '/^\/\/# sourceMappingURL=/d' "$target/swagger-ui-bundle.js" "$target/redoc.standalone.js"

{
  echo "swagger-ui-dist $swagger_ui"
  echo "redoc $redoc"
} > "$target/VERSIONS"
(cd "$target" && sha256sum swagger-ui-bundle.js swagger-ui.css redoc.standalone.js >> VERSIONS)
echo "vendored into $target:" && cat "$target/VERSIONS"
