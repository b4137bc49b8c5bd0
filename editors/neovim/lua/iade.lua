-- iade language server client for Neovim 0.7 and later.
--
--   require('iade').setup()                                -- runs `iade lsp`
--   require('iade').setup({ cmd = { '/path/to/iade', 'lsp' } })
--
-- Every buffer with filetype `iade` is attached to `iade lsp`. The root
-- directory is the directory of the file (a stack is a directory); one client
-- serves all the files of one directory.
local M = {}

M.config = {
  -- Command that starts the language server.
  cmd = { 'iade', 'lsp' },
  -- Called as on_attach(client, bufnr) when a buffer is attached.
  on_attach = nil,
  -- Client capabilities; nil means Neovim's defaults.
  capabilities = nil,
}

-- root directory -> client id, for Neovim versions without vim.lsp.start.
local clients_by_root = {}

local function root_dir(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == '' then
    return vim.fn.getcwd()
  end
  return vim.fn.fnamemodify(name, ':p:h')
end

local function client_config(root)
  return {
    name = 'iade',
    cmd = M.config.cmd,
    root_dir = root,
    workspace_folders = {
      { uri = vim.uri_from_fname(root), name = root },
    },
    capabilities = M.config.capabilities,
    on_attach = M.config.on_attach,
  }
end

local function live_client(id)
  if not id then
    return nil
  end
  local client = vim.lsp.get_client_by_id(id)
  if client == nil or client.is_stopped() then
    return nil
  end
  return client
end

--- Attaches `bufnr` (default: the current buffer) to the iade language
--- server of its directory, starting the server if needed. Returns the
--- client id, or nil if the server could not be started.
function M.start(bufnr)
  if bufnr == nil or bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  if vim.bo[bufnr].buftype ~= '' then
    return nil
  end
  local root = root_dir(bufnr)

  if vim.lsp.start then
    -- Neovim 0.8 and later: reuses the client with the same name and root.
    return vim.lsp.start(client_config(root), { bufnr = bufnr })
  end

  -- Neovim 0.7: one client per root directory, kept here.
  local client = live_client(clients_by_root[root])
  local id = client and client.id or nil
  if id == nil then
    id = vim.lsp.start_client(client_config(root))
    if id == nil then
      vim.notify('iade: could not start ' .. table.concat(M.config.cmd, ' '), vim.log.levels.ERROR)
      return nil
    end
    clients_by_root[root] = id
  end
  vim.lsp.buf_attach_client(bufnr, id)
  return id
end

--- Configures the client and attaches every iade buffer, present and
--- future, to the language server.
function M.setup(opts)
  M.config = vim.tbl_extend('force', M.config, opts or {})
  local group = vim.api.nvim_create_augroup('iade_lsp', { clear = true })
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = 'iade',
    callback = function(args)
      M.start(args.buf)
    end,
  })
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.bo[bufnr].filetype == 'iade' then
      M.start(bufnr)
    end
  end
end

return M
