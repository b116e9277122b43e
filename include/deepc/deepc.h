/* deepc.h: the whole public API of libdeepc. Include this one header.
 *
 * Usage guide
 * -----------
 *   #include <deepc/deepc.h>
 *
 *   dc_manual_seed(0);
 *   dc_pool_mark m = dc_pool_push();              // tensors created below belong to the pool
 *   dc_tensor *x = dc_randn(DC_SHAPE(4, 3), dc_default_rng());
 *   dc_tensor *w = dc_tensor_retain(dc_randn(DC_SHAPE(2, 3), NULL)); // kept past the pool
 *   dc_set_requires_grad(w, true);
 *   dc_tensor *y = dc_linear(x, w, NULL);          // [4, 2]
 *   dc_tensor *loss = dc_mean_all(dc_mul(y, y));
 *   if (!loss) fprintf(stderr, "%s\n", dc_last_error());  // errors propagate as NULL
 *   dc_backward(loss, NULL, false);                // w->grad now holds d loss / d w
 *   dc_pool_pop(m);                                // frees x, y, loss and the graph
 *   dc_tensor_release(w);
 *
 * Headers:
 *   deepc/core.h       status codes, dtypes, tensors, pools, autograd, RNG, threads
 *   deepc/ops.h        differentiable ops (elementwise, matmul, conv, pooling, norms, losses...)
 *   deepc/nn.h         modules with PyTorch parameter names (Linear, Conv2d, BatchNorm2d, ...)
 *   deepc/optim.h      SGD, Adam, AdamW, gradient clipping, LR schedulers
 *   deepc/io.h         safetensors read (mmap) and atomic write
 *   deepc/tokenizer.h  Hugging Face tokenizers (BPE, Unigram, SentencePiece)
 *   deepc/data.h       MNIST / Fashion-MNIST / CIFAR-10, batches, metrics, images, downloads
 *   deepc/models.h     the CNN zoo (LeNet-5, AlexNet, VGG, ResNet)
 *   deepc/train.h      the CNN training loop, evaluation and comparison reports
 *   deepc/plot.h       line, bar and heat-map charts (PNG/SVG, cairo)
 *   deepc/progress.h   progress bars
 *   deepc/rnn.h        RNN/GRU/LSTM layers and cells, attention
 *   deepc/seq2seq.h    sequence-to-sequence models with attention
 *   deepc/llm.h        GPT-2 / Llama text generation from Hugging Face folders
 *   deepc/summarize.h  BART / T5 / extractive summarization
 *   deepc/diffusion.h  Stable Diffusion and deepc's own diffusion model
 */
#ifndef DEEPC_H
#define DEEPC_H

#define DEEPC_VERSION "0.1.0"

#include "deepc/core.h"
#if __has_include("deepc/ops.h")
#include "deepc/ops.h"
#endif
#if __has_include("deepc/nn.h")
#include "deepc/nn.h"
#endif
#if __has_include("deepc/optim.h")
#include "deepc/optim.h"
#endif
#if __has_include("deepc/io.h")
#include "deepc/io.h"
#endif
#if __has_include("deepc/tokenizer.h")
#include "deepc/tokenizer.h"
#endif
#include "deepc/data.h"
#include "deepc/models.h"
#include "deepc/plot.h"
#include "deepc/progress.h"
#include "deepc/train.h"
#if __has_include("deepc/rnn.h")
#include "deepc/rnn.h"
#endif
#if __has_include("deepc/seq2seq.h")
#include "deepc/seq2seq.h"
#endif
#if __has_include("deepc/llm.h")
#include "deepc/llm.h"
#endif
#if __has_include("deepc/summarize.h")
#include "deepc/summarize.h"
#endif
#if __has_include("deepc/diffusion.h")
#include "deepc/diffusion.h"
#endif

#endif /* DEEPC_H */
