/* block_list.h — the block files (one model family each), in the order pb_block_select asks
 * them. Adding a family: one line here and models/block_<name>.c (docs/ARCHITECTURE.md "Model
 * families"). */
PB_BLOCK(gpt)
PB_BLOCK(llama)
