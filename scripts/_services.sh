# Sourced by scripts/test: make sure the servers the tests start for themselves are installed.
# The tests run real redis-server and PostgreSQL processes of their own (temp dirs, ephemeral
# ports) and stop them; they need only the binaries.  These come from the Debian packages:
# installed here when running as root and missing (quietly, only then); otherwise we say how.
# Without them the tests that need them are skipped, except under CI=true, where they fail.
services_missing=()
command -v redis-server >/dev/null 2>&1 || services_missing+=(redis-server)
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    services_missing+=(postgresql)
fi
if [ "${#services_missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "scripts/test: installing ${services_missing[*]} (Debian packages) for the tests" >&2
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y -qq --no-install-recommends "${services_missing[@]}" >/dev/null 2>&1; then
            apt-get update -qq >/dev/null 2>&1 || true
            apt-get install -y -qq --no-install-recommends "${services_missing[@]}" >/dev/null \
                || echo "scripts/test: could not install ${services_missing[*]}" >&2
        fi
    else
        echo "scripts/test: ${services_missing[*]} not installed: the tests that need them are skipped" \
             "(fail under CI=true); install with: sudo apt-get install ${services_missing[*]}" >&2
    fi
fi
unset services_missing
