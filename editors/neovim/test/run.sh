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

run() {
  IADE_BIN=$bin XDG_STATE_HOME=$work XDG_DATA_HOME=$work XDG_CACHE_HOME=$work \
    timeout 60 nvim --headless -n -i NONE -u "$1" \
    -c "luafile $here/diagnostics.lua"
}

run "$work/init.lua"

# The `vim.lsp.start` path of Neovim 0.8 and later. Where this Neovim lacks it, a stand-in with
# its documented behaviour (reuse the client with the same name and root directory, else start
# one; attach the buffer) exercises the plugin's call; where it has it, the run above did.
if nvim --headless -n -i NONE -u NONE -c 'lua io.stdout:write(vim.lsp.start and "yes" or "no")' -c 'qa!' 2>/dev/null | grep -q no; then
  cat > "$work/init-start.lua" <<INIT
dofile('$work/init.lua')
vim.g.iade_expect_lsp_start = true
local started = {}
vim.lsp.start = function(config, opts)
  local key = config.name .. '|' .. config.root_dir
  local id = started[key]
  local client = id and vim.lsp.get_client_by_id(id)
  if client == nil or client.is_stopped() then
    id = vim.lsp.start_client(config)
    started[key] = id
  end
  vim.lsp.buf_attach_client((opts and opts.bufnr) or 0, id)
  vim.g.iade_used_lsp_start = true
  return id
end
INIT
  echo "again, through vim.lsp.start:"
  run "$work/init-start.lua"
fi
