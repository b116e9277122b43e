/* cmd_tokenize.c: `deepc tokenize`: encodes texts to token ids, or decodes ids to text, with
 * a Hugging Face tokenizer (tokenizer.json, a vocab.json + merges.txt folder, CLIP's
 * .txt.gz vocabulary or a SentencePiece .model). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deepc/deepc.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: deepc tokenize --tokenizer PATH [--no-special] [--json] [TEXT...]\n"
            "       deepc tokenize --tokenizer PATH --decode [--skip-special] ID...\n"
            "\n"
            "Encodes each TEXT and prints its token ids on one line, separated by spaces (with no\n"
            "TEXT, each line of standard input is a TEXT). Special tokens are added as HF's\n"
            "tokenizer(text)[\"input_ids\"] does, unless --no-special. --json prints\n"
            "{\"ids\":[...],\"tokens\":[...]} per TEXT instead. --decode prints the text of the IDs\n"
            "(--skip-special drops special tokens).\n"
            "\n"
            "PATH: a tokenizer.json file, a folder (tokenizer.json, or vocab.json + merges.txt, or\n"
            "tokenizer.model), CLIP's bpe_simple_vocab_16e6.txt.gz, or a SentencePiece .model.\n");
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", out);
        else if (*p == '\t') fputs("\\t", out);
        else if (*p == '\r') fputs("\\r", out);
        else if (*p < 0x20) fprintf(out, "\\u%04x", *p);
        else fputc(*p, out);
    }
    fputc('"', out);
}

static int encode_text(dc_tokenizer *tok, const char *text, size_t len, bool special, bool json)
{
    dc_encoding enc;
    if (dc_tokenizer_encode(tok, text, len, special, false, &enc)) {
        fprintf(stderr, "deepc tokenize: %s\n", dc_last_error());
        return 1;
    }
    if (json) {
        fputs("{\"ids\":[", stdout);
        for (size_t i = 0; i < enc.n; i++) printf("%s%d", i ? "," : "", enc.ids[i]);
        fputs("],\"tokens\":[", stdout);
        for (size_t i = 0; i < enc.n; i++) {
            if (i) fputc(',', stdout);
            const char *t = dc_tokenizer_id_to_token(tok, enc.ids[i]);
            json_string(stdout, t ? t : "");
        }
        fputs("]}\n", stdout);
    } else {
        for (size_t i = 0; i < enc.n; i++) printf("%s%d", i ? " " : "", enc.ids[i]);
        fputc('\n', stdout);
    }
    dc_encoding_free(&enc);
    return 0;
}

int dc_cmd_tokenize(int argc, char **argv)
{
    const char *path = NULL;
    bool special = true, json = false, decode = false, skip_special = false;
    int first = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            first = i + 1;
            break;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--tokenizer")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "deepc tokenize: --tokenizer needs a PATH\n");
                return 2;
            }
            path = argv[++i];
        } else if (!strncmp(a, "--tokenizer=", 12))
            path = a + 12;
        else if (!strcmp(a, "--no-special"))
            special = false;
        else if (!strcmp(a, "--json"))
            json = true;
        else if (!strcmp(a, "--decode"))
            decode = true;
        else if (!strcmp(a, "--skip-special"))
            skip_special = true;
        else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "deepc tokenize: unknown option '%s' (see deepc tokenize --help)\n", a);
            return 2;
        } else {
            first = i;
            break;
        }
    }
    if (!path) {
        fprintf(stderr, "deepc tokenize: --tokenizer PATH is required (see deepc tokenize --help)\n");
        return 2;
    }
    if (decode && first >= argc) {
        fprintf(stderr, "deepc tokenize: --decode needs at least one ID\n");
        return 2;
    }
    /* parse the ids before loading, to report bad arguments early */
    int32_t *ids = NULL;
    size_t nids = 0;
    if (decode) {
        ids = malloc((size_t)(argc - first) * sizeof *ids);
        if (!ids) {
            fprintf(stderr, "deepc tokenize: out of memory\n");
            return 1;
        }
        for (int i = first; i < argc; i++) {
            char *end;
            errno = 0;
            long v = strtol(argv[i], &end, 10);
            if (errno || end == argv[i] || *end || v < INT32_MIN || v > INT32_MAX) {
                fprintf(stderr, "deepc tokenize: '%s' is not a token id\n", argv[i]);
                free(ids);
                return 2;
            }
            ids[nids++] = (int32_t)v;
        }
    }
    dc_tokenizer *tok = dc_tokenizer_load(path);
    if (!tok) {
        fprintf(stderr, "deepc tokenize: %s\n", dc_last_error());
        free(ids);
        return 1;
    }
    int rc = 0;
    if (decode) {
        char *text = dc_tokenizer_decode(tok, ids, nids, skip_special);
        if (!text) {
            fprintf(stderr, "deepc tokenize: %s\n", dc_last_error());
            rc = 1;
        } else {
            printf("%s\n", text);
            free(text);
        }
    } else if (first < argc) {
        for (int i = first; i < argc && !rc; i++) rc = encode_text(tok, argv[i], strlen(argv[i]), special, json);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        while (!rc && (got = getline(&line, &cap, stdin)) >= 0) {
            size_t n = (size_t)got;
            if (n && line[n - 1] == '\n') n--;
            rc = encode_text(tok, line, n, special, json);
        }
        free(line);
    }
    free(ids);
    dc_tokenizer_free(tok);
    return rc;
}
