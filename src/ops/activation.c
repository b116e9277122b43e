/* activation.c: relu, leaky_relu, gelu (erf and tanh forms), quick_gelu, silu, tanh,
 * sigmoid. Each is one elementwise kernel call forward and one backward; the formulas live
 * in src/backend/cpu/elementwise.c and follow PyTorch's CPU kernels. */
#include "deepc/ops.h"
#include "../core/internal.h"
#include "../backend/kernels_elementwise.h"

/* relu: dL/dx = g where out > 0 (PyTorch's threshold_backward on the result) */
dc_tensor *dc_relu(dc_tensor *x) { return dc__ew_unary("relu", DC_EW_RELU, x, NULL, DC_EW_RELU_BWD, true); }

/* relu_: the same, written into x's buffer when nothing else can read x (torch.relu_) */
dc_tensor *dc_relu_(dc_tensor *x)
{
    return dc__ew_unary_inplace("relu_", DC_EW_RELU, x, NULL, DC_EW_RELU_BWD);
}

/* leaky_relu: dL/dx = x > 0 ? g : slope * g */
dc_tensor *dc_leaky_relu(dc_tensor *x, float negative_slope)
{
    float p[2] = {negative_slope, 0};
    return dc__ew_unary("leaky_relu", DC_EW_LEAKY_RELU, x, p, DC_EW_LEAKY_RELU_BWD, false);
}

/* gelu (erf):  out = x Phi(x),  dL/dx = g (Phi(x) + x phi(x)),  phi(x) = exp(-x^2/2)/sqrt(2 pi)
 * gelu (tanh): out = x/2 (1 + tanh(u)),  u = sqrt(2/pi)(x + 0.044715 x^3),
 *   dL/dx = g (1/2 (1 + tanh u) + x/2 (1 - tanh^2 u) sqrt(2/pi)(1 + 3 * 0.044715 x^2)) */
dc_tensor *dc_gelu(dc_tensor *x, dc_gelu_approx approximate)
{
    if (approximate != DC_GELU_NONE && approximate != DC_GELU_TANH) {
        dc_set_error(DC_ERR_ARG, "gelu: unknown approximation %d", (int)approximate);
        return NULL;
    }
    if (approximate == DC_GELU_TANH)
        return dc__ew_unary("gelu", DC_EW_GELU_TANH, x, NULL, DC_EW_GELU_TANH_BWD, false);
    return dc__ew_unary("gelu", DC_EW_GELU, x, NULL, DC_EW_GELU_BWD, false);
}

/* quick_gelu: out = x s(1.702 x),  dL/dx = g s + g x s (1 - s) 1.702,  s = sigmoid(1.702 x) */
dc_tensor *dc_quick_gelu(dc_tensor *x)
{
    return dc__ew_unary("quick_gelu", DC_EW_QUICK_GELU, x, NULL, DC_EW_QUICK_GELU_BWD, false);
}

/* silu: out = x s(x),  dL/dx = g s (1 + x (1 - s)) */
dc_tensor *dc_silu(dc_tensor *x) { return dc__ew_unary("silu", DC_EW_SILU, x, NULL, DC_EW_SILU_BWD, false); }

/* tanh: dL/dx = g (1 - out^2) */
dc_tensor *dc_tanh(dc_tensor *x) { return dc__ew_unary("tanh", DC_EW_TANH, x, NULL, DC_EW_TANH_BWD, true); }

/* sigmoid: dL/dx = g (1 - out) out */
dc_tensor *dc_sigmoid(dc_tensor *x)
{
    return dc__ew_unary("sigmoid", DC_EW_SIGMOID, x, NULL, DC_EW_SIGMOID_BWD, true);
}
