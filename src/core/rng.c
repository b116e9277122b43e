/* rng.c: the seedable generator: MT19937 seeded as torch.manual_seed seeds its CPU
 * generator, with torch's transforms for uniform floats (24 bits) and doubles (53 bits). */
#include <math.h>

#include "internal.h"

void dc_rng_seed(dc_rng *rng, uint64_t seed)
{
    rng->mt[0] = (uint32_t)(seed & 0xffffffffu);
    for (int i = 1; i < 624; i++)
        rng->mt[i] = 1812433253u * (rng->mt[i - 1] ^ (rng->mt[i - 1] >> 30)) + (uint32_t)i;
    rng->index = 624;
    rng->has_next_normal = false;
    rng->next_normal = 0;
}

static void twist(dc_rng *rng)
{
    uint32_t *mt = rng->mt;
    for (int i = 0; i < 624; i++) {
        uint32_t y = (mt[i] & 0x80000000u) | (mt[(i + 1) % 624] & 0x7fffffffu);
        mt[i] = mt[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1) ? 0x9908b0dfu : 0);
    }
    rng->index = 0;
}

uint32_t dc_rng_u32(dc_rng *rng)
{
    if (rng->index >= 624) twist(rng);
    uint32_t y = rng->mt[rng->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t dc_rng_u64(dc_rng *rng)
{
    uint64_t hi = dc_rng_u32(rng), lo = dc_rng_u32(rng);
    return (hi << 32) | lo;
}

float dc_rng_uniform_f32(dc_rng *rng)
{
    return (float)(dc_rng_u32(rng) & ((1u << 24) - 1)) * (1.0f / 16777216.0f);
}

double dc_rng_uniform_f64(dc_rng *rng)
{
    return (double)(dc_rng_u64(rng) & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

double dc_rng_normal(dc_rng *rng)
{
    if (rng->has_next_normal) {
        rng->has_next_normal = false;
        return rng->next_normal;
    }
    double u1 = dc_rng_uniform_f64(rng), u2 = dc_rng_uniform_f64(rng);
    double r = sqrt(-2.0 * log1p(-u2));
    double theta = 2.0 * M_PI * u1;
    rng->next_normal = r * sin(theta);
    rng->has_next_normal = true;
    return r * cos(theta);
}

uint64_t dc_rng_below(dc_rng *rng, uint64_t n)
{
    if (n <= 1) return 0;
    /* rejection sampling: no modulo bias */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = dc_rng_u64(rng);
    } while (x >= limit);
    return x % n;
}

static dc_rng default_rng;
static bool default_rng_seeded = false;

dc_rng *dc_default_rng(void)
{
    if (!default_rng_seeded) {
        dc_rng_seed(&default_rng, 67280421310721ull); /* torch's default seed */
        default_rng_seeded = true;
    }
    return &default_rng;
}

void dc_manual_seed(uint64_t seed)
{
    dc_rng_seed(&default_rng, seed);
    default_rng_seeded = true;
}

static dc_status check_fill_target(const char *op, const dc_tensor *t)
{
    if (!t) return dc_set_error(DC_ERR_ARG, "%s: NULL tensor", op);
    if (t->dtype != DC_F32) return dc_set_error(DC_ERR_DTYPE, "%s: tensor must be F32, got %s", op, dc_dtype_name(t->dtype));
    if (t->storage->device != DC_CPU) return dc_set_error(DC_ERR_DEVICE, "%s: only CPU tensors", op);
    if (!dc_is_contiguous(t)) return dc_set_error(DC_ERR_ARG, "%s: tensor must be contiguous", op);
    return DC_OK;
}

dc_status dc_uniform_(dc_tensor *t, double low, double high, dc_rng *rng)
{
    if (check_fill_target("uniform_", t)) return dc_last_status();
    if (!rng) rng = dc_default_rng();
    float *p = dc_data_f32(t);
    int64_t n = dc_numel(t);
    for (int64_t i = 0; i < n; i++) p[i] = (float)(dc_rng_uniform_f32(rng) * (high - low) + low);
    return DC_OK;
}

dc_status dc_normal_(dc_tensor *t, double mean, double std, dc_rng *rng)
{
    if (check_fill_target("normal_", t)) return dc_last_status();
    if (!rng) rng = dc_default_rng();
    float *p = dc_data_f32(t);
    int64_t n = dc_numel(t);
    for (int64_t i = 0; i < n; i++) p[i] = (float)(dc_rng_normal(rng) * std + mean);
    return DC_OK;
}

dc_tensor *dc_rand(int ndim, const int64_t *shape, dc_rng *rng)
{
    dc_tensor *t = dc_empty(DC_F32, ndim, shape);
    if (t && dc_uniform_(t, 0, 1, rng)) {
        dc__discard(t);
        return NULL;
    }
    return t;
}

dc_tensor *dc_randn(int ndim, const int64_t *shape, dc_rng *rng)
{
    dc_tensor *t = dc_empty(DC_F32, ndim, shape);
    if (t && dc_normal_(t, 0, 1, rng)) {
        dc__discard(t);
        return NULL;
    }
    return t;
}
