/* fuzz_tokenizer.c: libFuzzer target for tokenizer loading and encoding.
 *
 * The first byte picks the mode: even: the rest is a tokenizer.json to load (and, if it
 * loads, to encode a fixed text with); odd: the rest is text encoded and decoded with a small
 * built-in byte-level BPE tokenizer and a Unigram one (so the pipelines see arbitrary bytes).
 *   cmake -B build-fuzz -DDEEPC_FUZZ=ON -DCMAKE_C_COMPILER=clang && cmake --build build-fuzz --target fuzz_tokenizer
 *   build-fuzz/fuzz_tokenizer tests/fuzz_corpus/tokenizer -max_total_time=60 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deepc/tokenizer.h"

static const char bpe_json[] =
    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"\\u0120\":3,\"\\u0120a\":4,\"<|e|>\":5,\"c\":6},"
    "\"merges\":[\"a b\",\"\\u0120 a\"]},"
    "\"added_tokens\":[{\"id\":5,\"content\":\"<|e|>\",\"special\":true,\"lstrip\":true,\"rstrip\":true}],"
    "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFKC\"},{\"type\":\"Lowercase\"},{\"type\":\"Strip\"}]},"
    "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true},"
    "\"post_processor\":{\"type\":\"RobertaProcessing\",\"sep\":[\"<|e|>\",5],\"cls\":[\"<|e|>\",5]},"
    "\"decoder\":{\"type\":\"ByteLevel\"}}";

static const char uni_json[] =
    "{\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"byte_fallback\":true,\"vocab\":[[\"<unk>\",0],[\"\\u2581\",-1],"
    "[\"a\",-2],[\"ab\",-1.5],[\"\\u2581a\",-1.2],[\"<0x41>\",-5],[\"<0xC3>\",-5],[\"<0xA9>\",-5]]},"
    "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},"
    "\"behavior\":\"Isolated\"},{\"type\":\"Metaspace\",\"prepend_scheme\":\"first\"},{\"type\":\"Digits\"}]},"
    "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Metaspace\"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]}}";

static void run(dc_tokenizer *t, const char *text, size_t n)
{
    dc_encoding e;
    if (dc_tokenizer_encode(t, text, n, true, true, &e) == DC_OK) {
        char *s = dc_tokenizer_decode(t, e.ids, e.n, false);
        free(s);
        s = dc_tokenizer_decode(t, e.ids, e.n, true);
        free(s);
        dc_encoding_free(&e);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static dc_tokenizer *bpe, *uni;
    if (!bpe) bpe = dc_tokenizer_from_json(bpe_json, sizeof bpe_json - 1, "fuzz-bpe");
    if (!uni) uni = dc_tokenizer_from_json(uni_json, sizeof uni_json - 1, "fuzz-unigram");
    if (!size) return 0;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        if (bpe) run(bpe, rest, n);
        if (uni) run(uni, rest, n);
    } else {
        dc_tokenizer *t = dc_tokenizer_from_json(rest, n, "fuzz");
        if (t) {
            run(t, "Hello world, it's 2024! 日本語 😀 <s></s>", (size_t)-1);
            dc_tokenizer_free(t);
        }
    }
    return 0;
}
