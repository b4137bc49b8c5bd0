-- Headless check of the iade Neovim plugin: opens a .iade file with an error
-- and waits until the iade language server has published diagnostics for it.
-- Run through test/run.sh. Exits 0 on success, 1 on failure.

local function out(msg)
  io.stdout:write(msg .. '\n')
  io.stdout:flush()
end

local function finish(code)
  for _, client in pairs(vim.lsp.get_active_clients and vim.lsp.get_active_clients() or vim.lsp.get_clients()) do
    client.stop()
  end
  vim.wait(2000, function()
    return #(vim.lsp.get_active_clients and vim.lsp.get_active_clients() or vim.lsp.get_clients()) == 0
  end, 50)
  vim.cmd((code == 0 and 'qall!') or ('cquit ' .. code))
end

local function buf_clients(bufnr)
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ bufnr = bufnr, name = 'iade' })
  end
  local found = {}
  for _, client in pairs(vim.lsp.buf_get_clients(bufnr)) do
    if client.name == 'iade' then
      table.insert(found, client)
    end
  end
  return found
end

local function run()
  local bin = vim.env.IADE_BIN
  if bin == nil or bin == '' then
    bin = 'iade'
  end
  if vim.fn.executable(bin) ~= 1 then
    error('not executable: ' .. bin)
  end
  require('iade').setup({ cmd = { bin, 'lsp' } })

  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir, 'p')
  local file = dir .. '/main.iade'
  vim.fn.writefile({
    'use std.fs.{directory}',
    '',
    'directory data {',
    '  path = "/tmp/iade-nvim-test"',
    '  colour = "blue"',
    '}',
  }, file)
  vim.fn.writefile({ 'let port = 8080' }, dir .. '/other.iade')

  vim.cmd('edit ' .. vim.fn.fnameescape(file))
  local bufnr = vim.api.nvim_get_current_buf()
  if vim.bo[bufnr].filetype ~= 'iade' then
    error('filetype is "' .. vim.bo[bufnr].filetype .. '", expected "iade"')
  end

  -- Neovim 0.7 lists a client only once it is initialized.
  vim.wait(20000, function()
    return #buf_clients(bufnr) > 0
  end, 50)
  local clients = buf_clients(bufnr)
  if #clients ~= 1 then
    error('expected one iade client attached to the buffer, found ' .. #clients)
  end
  local client = clients[1]
  local namespace = vim.lsp.diagnostic.get_namespace(client.id)

  local published = vim.wait(20000, function()
    return #vim.diagnostic.get(bufnr, { namespace = namespace }) > 0
  end, 100)
  if not published then
    error('timed out after 20 s: no diagnostics from the iade client (stopped: '
      .. tostring(client.is_stopped()) .. ')')
  end

  local diagnostics = vim.diagnostic.get(bufnr, { namespace = namespace })
  local unknown_field = false
  for _, d in ipairs(diagnostics) do
    out(string.format('%s:%d:%d: [%s] %s', vim.fn.fnamemodify(file, ':t'), d.lnum + 1, d.col + 1,
      tostring(d.code or d.source or ''), d.message))
    if d.lnum == 4 and d.message:find('colour', 1, true) then
      unknown_field = true
    end
  end
  if not unknown_field then
    error('no diagnostic about the unknown field `colour` on line 5')
  end

  -- A second file of the same directory is served by the same client.
  vim.cmd('edit ' .. vim.fn.fnameescape(dir .. '/other.iade'))
  local other_buf = vim.api.nvim_get_current_buf()
  vim.wait(5000, function()
    return #buf_clients(other_buf) > 0
  end, 50)
  local other = buf_clients(other_buf)
  if #other ~= 1 or other[1].id ~= client.id then
    error('the second file of the directory is not attached to the same client')
  end
  if vim.g.iade_expect_lsp_start and not vim.g.iade_used_lsp_start then
    error('the plugin did not start the client through vim.lsp.start')
  end
  out('ok: ' .. #diagnostics .. ' diagnostic(s) from iade lsp (client ' .. client.id
    .. ', root ' .. client.config.root_dir .. ')')
end

local ok, err = pcall(run)
if not ok then
  out('FAIL: ' .. tostring(err))
  finish(1)
else
  finish(0)
end
