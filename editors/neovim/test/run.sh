#!/bin/sh
# Checks the Neovim plugin against a real language server, headless:
#   editors/neovim/test/run.sh [path/to/iade]
# The iade binary defaults to `iade` on PATH. Exits non-zero on failure.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
plugin=$(dirname "$here")
bin=${1:-iade}
case "$bin" in
  /*) ;;
  */*) [ -d "$(dirname "$bin")" ] && bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin") ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# Only this plugin (and Neovim's own runtime) on the runtime path.
cat > "$work/init.lua" <<INIT
vim.opt.runtimepath = { '$plugin', vim.env.VIMRUNTIME }
vim.opt.packpath = {}
vim.opt.swapfile = false
vim.cmd('filetype plugin on')
INIT

IADE_BIN=$bin XDG_STATE_HOME=$work XDG_DATA_HOME=$work XDG_CACHE_HOME=$work \
  timeout 60 nvim --headless -n -i NONE -u "$work/init.lua" \
  -c "luafile $here/diagnostics.lua"
