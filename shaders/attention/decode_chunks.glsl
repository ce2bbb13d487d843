// Flash-decoding's chunk length for one step, which attention_flash.comp (split 1 and 2, its
// prologue too) and attention_combine.comp must agree on: the step's positions,
// min(n_past + n_tokens, n_ctx), spread over the n_chunks chunks the recording dispatches (fixed
// by n_ctx), in multiples of `quantum` (every tile length BC divides it). Read from the step
// buffer, so one recording serves every step: a short history in a large context still gets as
// many chunks of `quantum` positions as it fills, as in a small context, where a length fixed by
// n_ctx (n_ctx / 256 at 64k) would leave a few long chunks, each a serial walk in one workgroup.
uint decode_chunk_len(uint n_past, uint n_tokens, uint n_ctx, uint quantum, uint n_chunks) {
  const uint live = min(n_past + n_tokens, n_ctx);
  return quantum * max(1u, div_up(div_up(live, n_chunks), quantum));
}
