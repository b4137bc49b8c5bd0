" iade source files.
autocmd BufRead,BufNewFile *.iade setfiletype iade
