/* core/nn/nn.h — the built-in layer, loss and optimizer types.  Each is
 * defined in core/nn/ and listed by core/builtins.c in the built-in plugin
 * descriptor; nothing else refers to them (the rest of symlab finds types
 * through the registry, by name). */
#ifndef SYMLAB_CORE_NN_H
#define SYMLAB_CORE_NN_H

#include <symlab/plugin.h>

/* Layers: linear.c, conv2d.c, pool.c (both pools), flatten.c, layernorm.c,
 * activations.c (relu to identity). */
extern const sl_module_type sl_linear_type;     /* "linear" */
extern const sl_module_type sl_conv2d_type;     /* "conv2d" */
extern const sl_module_type sl_maxpool2d_type;  /* "maxpool2d" */
extern const sl_module_type sl_avgpool2d_type;  /* "avgpool2d" */
extern const sl_module_type sl_flatten_type;    /* "flatten" */
extern const sl_module_type sl_layernorm_type;  /* "layernorm" */
extern const sl_module_type sl_relu_type;       /* "relu" */
extern const sl_module_type sl_leaky_relu_type; /* "leaky_relu" */
extern const sl_module_type sl_tanh_type;       /* "tanh" */
extern const sl_module_type sl_sigmoid_type;    /* "sigmoid" */
extern const sl_module_type sl_gelu_type;       /* "gelu" */
extern const sl_module_type sl_identity_type;   /* "identity" */
extern const sl_module_type sl_groupnorm_type;  /* "groupnorm" */
extern const sl_module_type sl_global_avgpool_type; /* "global_avgpool" */
extern const sl_module_type sl_sequential_type; /* "sequential" (container) */
extern const sl_module_type sl_residual_type;   /* "residual" (container) */
extern const sl_module_type sl_reshape_type;    /* "reshape" (reshape.c) */

/* Losses (core/nn/losses.c). */
extern const sl_loss_type sl_cross_entropy_type; /* "cross_entropy" */
extern const sl_loss_type sl_mse_type;           /* "mse" */

/* Optimizers (core/nn/optimizers.c). */
extern const sl_optim_type sl_sgd_type;     /* "sgd" */
extern const sl_optim_type sl_adam_type;    /* "adam" */
extern const sl_optim_type sl_adamw_type;   /* "adamw" */
extern const sl_optim_type sl_adagrad_type; /* "adagrad" */
extern const sl_optim_type sl_rmsprop_type; /* "rmsprop" */

#endif
