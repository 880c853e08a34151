-- User commands of codemem (documented in doc/codemem.txt; README lists them too).
if vim.g.loaded_codemem then
  return
end
vim.g.loaded_codemem = true

local function codemem()
  return require("codemem")
end

local commands = {
  CodememSearch = {
    function(o)
      codemem().search(o.args)
    end,
    { nargs = "*", desc = "codemem: search the codebase (quickfix list + picker)" },
  },
  CodememSimilar = {
    function(o)
      if o.range > 0 then
        codemem().similar(o.line1, o.line2)
      else
        codemem().similar()
      end
    end,
    { range = true, desc = "codemem: code similar to the range or the symbol under the cursor" },
  },
  CodememRemember = {
    function(o)
      if o.range > 0 then
        codemem().remember(o.args, o.line1, o.line2)
      else
        codemem().remember(o.args)
      end
    end,
    { nargs = "*", range = true, desc = "codemem: pin a note to the range (or the cursor line)" },
  },
  CodememReindex = {
    function()
      codemem().reindex()
    end,
    { desc = "codemem: bring the index up to date" },
  },
  CodememStatus = {
    function()
      codemem().status()
    end,
    { desc = "codemem: index and backend status" },
  },
}

for name, def in pairs(commands) do
  vim.api.nvim_create_user_command(name, def[1], def[2])
end
