/* core/builtins.c — the built-in types, offered through the same descriptor
 * as any plugin. */
#include "config.h"

#include "internal.h"
#include "nn/nn.h"
#include "registry_internal.h"

static const sl_module_type *const builtin_modules[] = {
    &sl_linear_type,  &sl_conv2d_type,     &sl_maxpool2d_type, &sl_avgpool2d_type,
    &sl_flatten_type, &sl_layernorm_type,  &sl_relu_type,      &sl_leaky_relu_type,
    &sl_tanh_type,    &sl_sigmoid_type,    &sl_gelu_type,      &sl_identity_type,
    &sl_groupnorm_type, &sl_global_avgpool_type, &sl_sequential_type, &sl_residual_type,
    &sl_reshape_type, NULL};

static const sl_loss_type *const builtin_losses[] = {&sl_cross_entropy_type, &sl_mse_type, NULL};

static const sl_optim_type *const builtin_optims[] = {
    &sl_sgd_type, &sl_adam_type, &sl_adamw_type, &sl_adagrad_type, &sl_rmsprop_type, NULL};

static const sl_plugin builtin_plugin = {
    SL_PLUGIN_HEADER,
    .name = "builtin",
    .version = SL_VERSION_STRING,
    .license = "MIT",
    .summary = "layers, losses and optimizers that ship with symlab",
    .modules = builtin_modules,
    .losses = builtin_losses,
    .optims = builtin_optims,
};

const sl_plugin *sl_builtin_plugin(void) { return &builtin_plugin; }
