module finetune.build/gotemplate

go 1.19
