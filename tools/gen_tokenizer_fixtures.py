#!/usr/bin/env python3
"""gen_tokenizer_fixtures.py: writes tests/fixtures/tokenizers/: a corpus of strings and the ids
and decodes that Hugging Face transformers / tokenizers give for it, which test_tokenizer_hf.c
compares deepc against.

Run (from the repo root, with ../shared beside the checkout):
    pip install tokenizers transformers sentencepiece protobuf
    python3 tools/gen_tokenizer_fixtures.py [--shared ../shared] [--out tests/fixtures/tokenizers]

It builds the HF tokenizers from the shared files exactly as a user would load them:
    gpt2   GPT2Tokenizer.from_pretrained(folder with gpt2-tokenizer/vocab.json + merges.txt)
    bart   BartTokenizer.from_pretrained(folder with bart-tokenizer/vocab.json + merges.txt)
    clip   CLIPTokenizer.from_pretrained(stable-diffusion-v1-5-configs/tokenizer)
    t5     T5Tokenizer.from_pretrained(t5-tokenizer)
    llama  LlamaTokenizer.from_pretrained(folder with stories260K/tok512.model as tokenizer.model,
           add_bos_token=True: Llama's documented default, which transformers v5 drops when
           no tokenizer_config.json says it)
and, for the raw `tokenizers` library, Tokenizer.from_file(t5-tokenizer/tokenizer.json).

Files written (all small):
    corpus.jsonl.gz        one JSON string per line (the texts; no NUL characters)
    <name>.jsonl.gz        per text: {"ids": [...], "ids_ns": [...], "dec": "...", "dec_skip": "..."}
                           (null for ids_ns: equal to ids, or to ids[a:len - b] when "ns_slice": [a, b];
                           null for dec, dec_skip: equal to the text)
                           ids: tokenizer(text)["input_ids"]; ids_ns: add_special_tokens=False;
                           dec / dec_skip: tokenizer.decode(ids, skip_special_tokens=False/True)
    t5_rawlib.jsonl.gz     {"ids": [...]} from tokenizers.Tokenizer (no transformers layer)
    bart.tokenizer.json.gz the tokenizer.json transformers saves for BART (byte-level case)
    llama.tokenizer.json   the tokenizer.json transformers saves for the stories260K tokenizer
    versions.txt           the package versions used
"""
import argparse
import gzip
import json
import os
import random
import shutil
import sys
import tempfile


def make_corpus(seed=1234, n_random=4700):
    rnd = random.Random(seed)
    fixed = [
        "", " ", "  ", "\t", "\n", "\r\n", " \n ", "a", "Hello world", "Hello world!", " Hello", "Hello ",
        "it's", "don't", "I'm", "we've", "they're", "you'll", "he'd", "'s", "''s", "O'Neil's", "DON'T", "I 'm",
        "The quick brown fox jumps over the lazy dog.", "  leading", "trailing   ", "a  b   c    d",
        "tabs\tand\ttabs", "new\nlines\n\n\nhere", "mixed \t\n spaces", "\u00a0nbsp\u00a0", "\u3000ideographic",
        "2024-01-15", "12:30:45", "3.14159", "1,000,000", "$12.99", "100%", "10^6", "-42", "+1 (555) 123-4567",
        "email@example.com", "https://huggingface.co/docs?x=1&y=2#frag", "C:\\path\\to\\file.txt",
        "def f(x):\n    return x ** 2\n", "for (int i = 0; i < n; i++) { a[i] = b[i] * 2; }", "x = {'a': [1, 2, 3]}",
        "<|endoftext|>", "<|startoftext|>", "<s>", "</s>", "<pad>", "<unk>", "<mask>", "<extra_id_0>",
        "a <|endoftext|> b", "<s>hello</s>", "text </s> more", "<mask> here", " <mask>", "<extra_id_1> fill",
        "café", "naïve", "résumé", "Zürich", "ÅNGSTRÖM", "e\u0301", "cafe\u0301", "İstanbul", "ß", "ﬁ ligature",
        "日本語のテキスト", "中文文本测试", "한국어 텍스트", "ＦＵＬＬＷＩＤＴＨ", "①②③", "Ⅻ", "½ ¾",
        "مرحبا بالعالم", "שלום עולם", "Привет, мир!", "Γειά σου Κόσμε", "नमस्ते दुनिया", "สวัสดีชาวโลก",
        "😀", "👍🏽", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "🇺🇸🇫🇷", "❤️", "emoji 😀 in text 🎉!",
        "\x01\x02\x03", "bell\x07", "esc\x1b[31mred\x1b[0m", "\x7f", "\u200b zero width", "\ufeffbom", "\u00ad",
        "a" * 300, "supercalifragilisticexpialidocious" * 5, "ab" * 200, "1234567890" * 20, "!!!???..." * 10,
        " " * 50, "\n" * 20, "\t \t \t", "x" + " " * 17 + "y", "Mr. Smith's dog . , ? !",
        "He said , \" hello \" . She said : n't", "do n't", "I 'm here , right ?",
    ]
    words = ("the of and to in is that it was for on are as with his they at be this from have or by one had "
             "not but what all were when we there can an your which their said if will each about how up out "
             "them then she many some so these would other into has more her two like him see time could no "
             "make than first been its who now people my made over did down only way find use may water long "
             "little very after words called just where most know get through back much before go good new "
             "write our used me man too any day same right look think also around another came come work three "
             "word must because does part even place well such here take why things help put years different "
             "tokenizer transformer attention embedding gradient Lily Tim happy played park ball").split()
    pieces = ["café", "naïve", "日本", "中文", "한국", "مرحبا", "Привет", "😀", "👍", "🎉", "∑", "→", "©", "™",
              "\u00e9", "e\u0301", "ñ", "Ω", "µ", "—", "…", "“quoted”", "‘single’", "¿", "¡", "€", "£", "¥"]
    seps = [" ", " ", " ", " ", "  ", "\t", "\n", ", ", ". ", "! ", "? ", "; ", ": ", " - ", "'s ", "n't ", "\n\n", "   "]
    out = list(fixed)
    for _ in range(n_random):
        kind = rnd.random()
        n = rnd.randint(1, 30)
        parts = []
        for _ in range(n):
            r = rnd.random()
            if r < 0.70:
                w = rnd.choice(words)
                if rnd.random() < 0.15:
                    w = w.capitalize()
                if rnd.random() < 0.05:
                    w = w.upper()
            elif r < 0.82:
                w = rnd.choice(pieces)
            elif r < 0.90:
                w = str(rnd.randint(0, 10 ** rnd.randint(1, 9)))
            elif r < 0.94:
                w = rnd.choice(["<|endoftext|>", "</s>", "<s>", "<pad>", "<unk>", "<mask>", "<extra_id_5>", "<0x41>"])
            else:
                w = "".join(chr(rnd.choice([rnd.randint(0x21, 0x7e), rnd.randint(0xa0, 0x24f), rnd.randint(0x370, 0x52f),
                                            rnd.randint(0x3040, 0x30ff), rnd.randint(0x4e00, 0x9fff), rnd.randint(0x1f300, 0x1f64f),
                                            rnd.randint(1, 31)]))
                            for _ in range(rnd.randint(1, 6)))
            parts.append(w)
            parts.append(rnd.choice(seps))
        s = "".join(parts)
        if kind < 0.2:
            s = s.strip()
        elif kind < 0.3:
            s = " " + s
        s = s.replace("\x00", "")
        out.append(s)
    # random code points, including unassigned and private-use ones (never surrogates or NUL)
    for _ in range(300):
        cps = []
        for _ in range(rnd.randint(1, 12)):
            c = rnd.randint(1, 0x2FFFF)
            if 0xD800 <= c <= 0xDFFF:
                c = 0x41
            cps.append(chr(c))
        out.append("".join(cps))
    # long texts
    for _ in range(8):
        out.append(" ".join(rnd.choice(words) for _ in range(rnd.randint(200, 600))))
    out.append("x" * 5000)
    out.append("日本語" * 500)
    return out


def jsonl_gz(path, rows):
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "shared"))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "tokenizers"))
    args = ap.parse_args()
    import tokenizers
    import transformers
    from transformers import BartTokenizer, CLIPTokenizer, GPT2Tokenizer, LlamaTokenizer, T5Tokenizer

    models = os.path.join(args.shared, "models")
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp()
    try:
        def folder(name, files):
            d = os.path.join(tmp, name)
            os.makedirs(d)
            for src, dst in files:
                shutil.copy(os.path.join(models, src), os.path.join(d, dst))
            return d

        toks = {
            "gpt2": GPT2Tokenizer.from_pretrained(folder("gpt2", [("gpt2-tokenizer/vocab.json", "vocab.json"),
                                                                ("gpt2-tokenizer/merges.txt", "merges.txt")])),
            "bart": BartTokenizer.from_pretrained(folder("bart", [("bart-tokenizer/vocab.json", "vocab.json"),
                                                                ("bart-tokenizer/merges.txt", "merges.txt")])),
            "clip": CLIPTokenizer.from_pretrained(os.path.join(models, "stable-diffusion-v1-5-configs", "tokenizer")),
            "t5": T5Tokenizer.from_pretrained(os.path.join(models, "t5-tokenizer")),
            "llama": LlamaTokenizer.from_pretrained(folder("llama", [("stories260K/tok512.model", "tokenizer.model")]),
                                                    add_bos_token=True),
        }
        corpus = make_corpus()
        print(f"{len(corpus)} strings", file=sys.stderr)
        jsonl_gz(os.path.join(args.out, "corpus.jsonl.gz"), corpus)
        for name, tok in toks.items():
            rows = []
            for s in corpus:
                ids = tok(s)["input_ids"]
                ids_ns = tok(s, add_special_tokens=False)["input_ids"]
                dec, dec_skip = tok.decode(ids), tok.decode(ids, skip_special_tokens=True)
                # null: the same as the text (ids_ns: the same as ids); keeps the files small
                row = {"ids": ids, "ids_ns": None if ids_ns == ids else ids_ns,
                       "dec": None if dec == s else dec, "dec_skip": None if dec_skip == s else dec_skip}
                for a in range(3):  # ids_ns as a slice of ids: [a, len(ids) - b]
                    for b in range(3):
                        if row["ids_ns"] is not None and ids[a:len(ids) - b] == ids_ns:
                            row["ids_ns"] = None
                            row["ns_slice"] = [a, b]
                rows.append(row)
            jsonl_gz(os.path.join(args.out, f"{name}.jsonl.gz"), rows)
            print(f"{name}: done", file=sys.stderr)
        raw = tokenizers.Tokenizer.from_file(os.path.join(models, "t5-tokenizer", "tokenizer.json"))
        jsonl_gz(os.path.join(args.out, "t5_rawlib.jsonl.gz"), [{"ids": raw.encode(s).ids} for s in corpus])
        # generated tokenizer.json files
        d = os.path.join(tmp, "save_bart")
        toks["bart"].save_pretrained(d)
        with open(os.path.join(d, "tokenizer.json"), "rb") as f, \
                gzip.open(os.path.join(args.out, "bart.tokenizer.json.gz"), "wb", compresslevel=9) as g:
            g.write(f.read())
        d = os.path.join(tmp, "save_llama")
        toks["llama"].save_pretrained(d)
        shutil.copy(os.path.join(d, "tokenizer.json"), os.path.join(args.out, "llama.tokenizer.json"))
        with open(os.path.join(args.out, "versions.txt"), "w") as f:
            f.write(f"transformers {transformers.__version__}\ntokenizers {tokenizers.__version__}\n"
                    f"strings {len(corpus)}\n")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
