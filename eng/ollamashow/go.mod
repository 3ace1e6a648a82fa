module ollamashow

go 1.19
