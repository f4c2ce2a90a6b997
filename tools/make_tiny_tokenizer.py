#!/usr/bin/env python3
"""Writes the tiny test model's tokenizer (tests/data/tiny-glm4v/tokenizer/).

tokenizer.model: GLM-4 format (base64 token bytes, space, rank; one per line) with 1000 ranks:
the 256 single bytes (rank = byte value), then 744 byte-pair merges learned from the English
text below. The training is deterministic: the most frequent adjacent pair wins, ties go to the
lexicographically smallest (left bytes, right bytes). tokenizer_config.json maps GLM-4's special
tokens to the tiny model's ids (config.json: eot 1000, boi 1001, eoi 1002, user 1003, ...).

Python 3 standard library only. Usage: tools/make_tiny_tokenizer.py [output_dir]
"""
import base64
import collections
import json
import os
import re
import sys

NUM_RANKS = 1000

# Special ids of the tiny checkpoint (golden.json "special_ids"), then the GLM specials the
# tiny model does not use, numbered after them.
SPECIAL_IDS = {
    "<|endoftext|>": 1000,
    "<|begin_of_image|>": 1001,
    "<|end_of_image|>": 1002,
    "<|user|>": 1003,
    "[gMASK]": 1004,
    "<sop>": 1005,
    "<|assistant|>": 1006,
    "<|observation|>": 1007,
    "[MASK]": 1008,
    "[sMASK]": 1009,
    "<eop>": 1010,
    "<|system|>": 1011,
    "<|begin_of_video|>": 1012,
    "<|end_of_video|>": 1013,
}

TRAINING_TEXT = """
A vision-language model reads a picture and a question and writes an answer, one token at a
time. The picture is cut into small square patches; each patch becomes a vector, and a stack of
attention layers lets every patch look at every other patch. What comes out is a short sequence
of image features that the language decoder treats like words it has never seen written down.
The decoder is a causal transformer: each new token may attend to the tokens before it, but
never to the ones after it. Keys and values of earlier tokens are kept in a cache so that the
next step only computes the newest row. When many people ask questions at the same time, the
server groups their steps into one batch, because the weights are read from memory once per
step whatever the batch size is. The scheduler decides which requests run, which wait, and which
are paused when the cache is full. A request that finishes gives its cache blocks back at once.
The gateway checks every request before it does any work: the number of images, the size of the
prompt, the temperature, the top p value and the number of tokens to generate. A request that
breaks a rule is refused with a clear message, and a request that arrives when the queue is full
is told to come back later. Text is streamed back as soon as it forms whole characters, and a
stop string ends the answer the moment it appears. Every service reports how busy it is, how
long requests wait, and how many tokens it produced, so that an operator can see the health of
the system at a glance. When a service is asked to stop, it first stops taking new work, then
finishes what it already started, and only then exits. If one part of the system goes away, the
rest keeps answering whatever it still can, and the missing part is used again as soon as it
returns. The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore.
How much wood would a woodchuck chuck if a woodchuck could chuck wood? What is in this image?
Describe the colors, the shapes and the objects you can see, and say where they are. There is a
red square in the top left corner, a blue circle in the middle, and a green line along the
bottom edge. The sky is clear, the grass is wet, and the children are playing near the river.
Numbers such as 1, 2, 3, 10, 42, 100, 2024 and 3.14 appear in questions about counting and time.
Engineers measure latency in milliseconds and throughput in tokens per second. A slow request
should never block a fast one, and a broken image should never crash the process that decodes it.
Memory is divided into fixed blocks; a sequence holds a table of the blocks it uses, and blocks
with identical content can be shared between requests that start with the same prompt. Weather
reports mention rain, snow, wind, clouds, sunshine, storms and fog. Kitchens have plates, cups,
forks, knives, spoons, bowls, ovens and fridges. Animals include cats, dogs, horses, birds, fish,
sheep, cows, goats, rabbits, mice and elephants. Cities have streets, bridges, towers, parks,
markets, schools, hospitals, museums, libraries and railway stations. Good documentation explains
why a decision was made, which alternatives were rejected, and what would make us change it.
Questions often begin with who, what, when, where, which, why or how; answers should be short,
correct and polite. Thank you for waiting; your answer is ready.
"""

# A simplified, ASCII-only version of the cl100k pre-tokenizer (the training text is ASCII).
PRETOKEN_RE = re.compile(
    r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]{1,3}| ?[^\sA-Za-z0-9]+[\r\n]*|\s*[\r\n]+|\s+")


def learn_merges(text, num_merges):
    words = collections.Counter(m.group(0).encode("utf-8") for m in PRETOKEN_RE.finditer(text))
    # Each word as a list of token byte strings, with its frequency.
    corpus = [([bytes([b]) for b in word], count) for word, count in sorted(words.items())]
    merges = []
    vocab = set(bytes([b]) for b in range(256))
    while len(merges) < num_merges:
        pairs = collections.Counter()
        for parts, count in corpus:
            for a, b in zip(parts, parts[1:]):
                pairs[(a, b)] += count
        candidates = [(-count, pair) for pair, count in pairs.items() if pair[0] + pair[1] not in vocab]
        if not candidates:
            raise SystemExit(f"training text too short: only {len(merges)} merges")
        _, (left, right) = min(candidates)
        merged = left + right
        merges.append(merged)
        vocab.add(merged)
        new_corpus = []
        for parts, count in corpus:
            out = []
            i = 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == left and parts[i + 1] == right:
                    out.append(merged)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            new_corpus.append((out, count))
        corpus = new_corpus
    return merges


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "tiny-glm4v", "tokenizer")
    os.makedirs(out_dir, exist_ok=True)
    tokens = [bytes([b]) for b in range(256)] + learn_merges(TRAINING_TEXT, NUM_RANKS - 256)
    assert len(tokens) == NUM_RANKS and len(set(tokens)) == NUM_RANKS
    with open(os.path.join(out_dir, "tokenizer.model"), "w", encoding="ascii", newline="\n") as f:
        for rank, token in enumerate(tokens):
            f.write(f"{base64.b64encode(token).decode('ascii')} {rank}\n")
    added = {
        str(token_id): {"content": text, "lstrip": False, "normalized": False, "rstrip": False,
                        "single_word": False, "special": True}
        for text, token_id in sorted(SPECIAL_IDS.items(), key=lambda kv: kv[1])
    }
    config = {
        "tokenizer_class": "ChatGLM4Tokenizer",
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "added_tokens_decoder": added,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
