-- codemem for Neovim: starts `codemem lsp` for your buffers and adds search, similar code,
-- notes and reindexing on top of it. `require("codemem").setup{}`; see :help codemem.

local M = {}

---@class codemem.Config
local defaults = {
  --- The server command; nil = `codemem` from PATH.
  cmd = nil,
  --- Filetypes to attach to; nil = every buffer with a filetype.
  filetypes = nil,
  root_markers = { "codemem.toml", ".git" },
  --- Skip the embedding model (exact and fuzzy matching only).
  lexical_only = false,
  --- MCP endpoint inside the server (for agents): { enabled, port, host }.
  mcp = { enabled = true },
  --- Extra codemem.toml keys sent as initializationOptions.
  init_options = {},
  --- Results per search.
  k = 20,
  --- "auto" (Telescope, then fzf-lua, then vim.ui.select), "telescope", "fzf-lua", "select"
  --- or "quickfix" (only the quickfix list, opened with :copen). The quickfix list is always filled.
  picker = "auto",
  --- Echo index progress (it is also in require("codemem").statusline()).
  progress = true,
}

M.config = vim.deepcopy(defaults)
--- Last codemem/status per client id, and the running index progress per client id.
M.state = { status = {}, progress = {}, setup_called = false }

local NAME = "codemem"

local function notify(msg, level)
  vim.notify("codemem: " .. msg, level or vim.log.levels.INFO)
end

function M.cmd()
  return M.config.cmd or { "codemem", "lsp" }
end

function M.init_options()
  local o = vim.deepcopy(M.config.init_options or {})
  o.lexicalOnly = M.config.lexical_only and true or false
  o.mcp = vim.tbl_extend("force", o.mcp or {}, M.config.mcp or {})
  return o
end

--- The codemem client of `bufnr` (else any running codemem client).
function M.client(bufnr)
  local clients = vim.lsp.get_clients({ name = NAME, bufnr = bufnr or 0 })
  if #clients == 0 then
    clients = vim.lsp.get_clients({ name = NAME })
  end
  return clients[1]
end

local function need_client()
  local c = M.client()
  if not c then
    notify("no codemem server is attached; open a file in your project (see :checkhealth codemem)", vim.log.levels.WARN)
  end
  return c
end

local function request(method, params, cb)
  local c = need_client()
  if not c then
    return
  end
  c:request(method, params, function(err, result)
    if err then
      notify(method .. " failed: " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      return
    end
    cb(result, c)
  end, vim.api.nvim_get_current_buf())
end

local function execute(command, args, cb)
  request("workspace/executeCommand", { command = command, arguments = args }, cb or function() end)
end

--- The line (0-based) of the hit's symbol: a hit's range is its whole chunk, which may begin
--- with small neighbours merged into it; the snippet starts at the range's first line.
function M.symbol_line(h)
  local start = h.range.start.line
  local sym = h.symbol ~= vim.NIL and h.symbol or nil
  if sym and h.snippet and h.snippet ~= vim.NIL then
    local leaf = sym:match("([%w_$]+)$")
    if leaf then
      local pat = "%f[%w_$]" .. vim.pesc(leaf) .. "%f[^%w_$]"
      local i = 0
      for line in (h.snippet .. "\n"):gmatch("([^\n]*)\n") do
        if line:find(pat) then
          return math.min(start + i, h.range["end"].line)
        end
        i = i + 1
      end
    end
  end
  return start
end

--- Hits → quickfix items (at the symbol's line, with that line as text).
function M.qf_items(hits)
  local items = {}
  for _, h in ipairs(hits or {}) do
    local at = M.symbol_line(h)
    local lines = vim.split((h.snippet ~= vim.NIL and h.snippet) or "", "\n", { plain = true })
    local text = lines[at - h.range.start.line + 1] or ""
    if not text:match("%S") then
      for _, l in ipairs(lines) do
        if l:match("%S") then
          text = l
          break
        end
      end
    end
    local label = (h.symbol and h.symbol ~= vim.NIL) and (h.symbol .. ": ") or ""
    items[#items + 1] = {
      filename = vim.uri_to_fname(h.uri),
      lnum = at + 1,
      col = at == h.range.start.line and h.range.start.character + 1 or 1,
      text = label .. vim.trim(text),
    }
  end
  return items
end

local function jump(item)
  vim.cmd.edit(vim.fn.fnameescape(item.filename))
  vim.api.nvim_win_set_cursor(0, { item.lnum, math.max(item.col - 1, 0) })
end

local function picker()
  local p = M.config.picker
  if p ~= "auto" then
    return p
  end
  if pcall(require, "telescope") then
    return "telescope"
  end
  if pcall(require, "fzf-lua") then
    return "fzf-lua"
  end
  return "select"
end

--- Puts the hits in the quickfix list, then shows them in the configured picker.
function M.show(title, hits)
  local items = M.qf_items(hits)
  vim.fn.setqflist({}, " ", { title = title, items = items })
  if #items == 0 then
    notify(title .. ": no results")
    return
  end
  local p = picker()
  if p == "telescope" then
    require("telescope.builtin").quickfix({ prompt_title = title })
  elseif p == "fzf-lua" then
    require("fzf-lua").quickfix({ prompt = title .. "> " })
  elseif p == "select" then
    vim.ui.select(items, {
      prompt = title,
      format_item = function(it)
        return string.format("%s:%d  %s", vim.fn.fnamemodify(it.filename, ":~:."), it.lnum, it.text)
      end,
    }, function(choice)
      if choice then
        jump(choice)
      end
    end)
  else
    vim.cmd("botright copen")
  end
end

--- codemem/search; results to the quickfix list and the picker.
function M.search(query)
  if not query or not query:match("%S") then
    vim.ui.input({ prompt = "codemem search: " }, function(q)
      if q and q:match("%S") then
        M.search(q)
      end
    end)
    return
  end
  request("codemem/search", { query = query, k = M.config.k }, function(result)
    M.show("codemem: " .. query, result and result.hits or {})
  end)
end

local function lsp_range(line1, line2)
  local last = vim.api.nvim_buf_get_lines(0, line2 - 1, line2, false)[1] or ""
  return { start = { line = line1 - 1, character = 0 }, ["end"] = { line = line2 - 1, character = #last } }
end

--- codemem/similar for lines line1..line2 (a range), else the symbol under the cursor.
function M.similar(line1, line2)
  local params = { textDocument = vim.lsp.util.make_text_document_params(), k = M.config.k }
  if line1 and line2 then
    params.range = lsp_range(line1, line2)
  else
    local pos = vim.api.nvim_win_get_cursor(0)
    params.position = { line = pos[1] - 1, character = pos[2] }
  end
  request("codemem/similar", params, function(result)
    M.show("codemem: similar code", result and result.hits or {})
  end)
end

--- Pins `note` to lines line1..line2 (default: the cursor line) as a shared memory.
function M.remember(note, line1, line2)
  if not note or not note:match("%S") then
    vim.ui.input({ prompt = "codemem note: " }, function(n)
      if n and n:match("%S") then
        M.remember(n, line1, line2)
      end
    end)
    return
  end
  local cur = vim.api.nvim_win_get_cursor(0)[1]
  local args = { uri = vim.uri_from_bufnr(0), range = lsp_range(line1 or cur, line2 or cur), note = vim.trim(note) }
  execute("codemem.remember", { args }, function(result)
    notify("note saved" .. (result and result.id and (" (" .. result.id .. ")") or ""))
  end)
end

function M.reindex()
  notify("reindexing…")
  execute("codemem.reindex", {}, function(result)
    local indexed, unchanged = 0, 0
    for _, s in ipairs(result and result.roots or {}) do
      indexed = indexed + (s.files_indexed or 0)
      unchanged = unchanged + (s.files_unchanged or 0)
    end
    notify(string.format("reindexed: %d files indexed, %d unchanged", indexed, unchanged))
  end)
end

--- The status as lines (also used by :checkhealth).
function M.status_lines(s)
  local lines = { string.format("state: %s, model: %s", s.state, s.model ~= vim.NIL and s.model or "none (lexical only)") }
  for _, r in ipairs(s.roots or {}) do
    lines[#lines + 1] = string.format(
      "%s: %d files, %d chunks, %d notes%s%s",
      r.root,
      r.files or 0,
      r.points or 0,
      r.memories or 0,
      r.indexing and ", indexing" or "",
      (r.lastError and r.lastError ~= vim.NIL) and (", last error: " .. r.lastError) or ""
    )
  end
  for _, b in ipairs(s.backends or {}) do
    lines[#lines + 1] = string.format("%s %s (%s): %s", b.healthy and "ok" or "UNHEALTHY", b.name, b.kind, b.detail or "")
  end
  if type(s.mcp) == "table" and s.mcp.url then
    lines[#lines + 1] = "MCP: " .. s.mcp.url
  end
  return lines
end

function M.status()
  execute("codemem.status", {}, function(s)
    notify(table.concat(M.status_lines(s), "\n"))
  end)
end

--- For a statusline: "codemem 42%" while indexing, "codemem" when ready, "" without a server.
function M.statusline()
  local c = M.client()
  if not c then
    return ""
  end
  local p = M.state.progress[c.id]
  if p then
    return string.format("codemem %d%%", p.percentage or 0)
  end
  local s = M.state.status[c.id]
  if s and s.state == "error" then
    return "codemem !"
  end
  return "codemem"
end

-- Server commands whose answer must be shown (code lens "N notes", code action "Find similar code").
local client_commands = {
  ["codemem.showMemories"] = function(command, ctx)
    local c = vim.lsp.get_client_by_id(ctx.client_id)
    c:request("workspace/executeCommand", { command = command.command, arguments = command.arguments }, function(err, r)
      if err then
        return notify(err.message, vim.log.levels.ERROR)
      end
      local lines = {}
      for _, m in ipairs(r and r.memories or {}) do
        local tags = (m.tags and #m.tags > 0) and (" #" .. table.concat(m.tags, " #")) or ""
        lines[#lines + 1] = "• " .. m.text .. tags
      end
      notify(#lines > 0 and table.concat(lines, "\n") or "no notes here")
    end, ctx.bufnr)
  end,
  ["codemem.findSimilar"] = function(command, ctx)
    local a = command.arguments and command.arguments[1] or {}
    local c = vim.lsp.get_client_by_id(ctx.client_id)
    c:request("codemem/similar", { textDocument = { uri = a.uri }, range = a.range, k = M.config.k }, function(err, r)
      if err then
        return notify(err.message, vim.log.levels.ERROR)
      end
      M.show("codemem: similar code", r and r.hits or {})
    end, ctx.bufnr)
  end,
}

local function on_status(_, result, ctx)
  M.state.status[ctx.client_id] = result
  if result and result.state == "error" then
    notify("error: " .. tostring(result.error), vim.log.levels.ERROR)
  end
end

local function lsp_config()
  return {
    cmd = M.cmd(),
    filetypes = M.config.filetypes,
    root_markers = M.config.root_markers,
    init_options = M.init_options(),
    handlers = { ["codemem/status"] = on_status },
    commands = client_commands,
  }
end

local group = vim.api.nvim_create_augroup("codemem", { clear = true })

local function on_progress(ev)
  local c = vim.lsp.get_client_by_id(ev.data.client_id)
  if not c or c.name ~= NAME then
    return
  end
  local v = ev.data.params.value
  if v.kind == "end" then
    M.state.progress[c.id] = nil
  else
    local prev = M.state.progress[c.id] or {}
    M.state.progress[c.id] = {
      title = v.title or prev.title,
      message = v.message or prev.message,
      percentage = v.percentage or prev.percentage,
    }
  end
  if M.config.progress then
    local p = M.state.progress[c.id]
    local msg = p and string.format("%s: %d%% %s", p.title or "codemem", p.percentage or 0, p.message or "")
      or ("codemem: " .. (v.message or "done"))
    vim.api.nvim_echo({ { msg } }, false, {})
  end
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  M.state.setup_called = true
  vim.api.nvim_clear_autocmds({ group = group })
  vim.api.nvim_create_autocmd("LspProgress", { group = group, callback = on_progress })
  if vim.lsp.config and vim.lsp.enable then
    vim.lsp.config(NAME, lsp_config())
    vim.lsp.enable(NAME)
  else
    -- Neovim 0.10: start (or reuse) one client per root on FileType.
    vim.api.nvim_create_autocmd("FileType", {
      group = group,
      pattern = M.config.filetypes or "*",
      callback = function(ev)
        if vim.bo[ev.buf].buftype ~= "" then
          return
        end
        local cfg = lsp_config()
        cfg.name = NAME
        cfg.root_dir = vim.fs.root(ev.buf, M.config.root_markers)
        if cfg.root_dir then
          for name, fn in pairs(client_commands) do
            vim.lsp.commands[name] = fn
          end
          vim.lsp.start(cfg, { bufnr = ev.buf })
        end
      end,
    })
  end
end

return M
