/* symlab/symlab.h — everything: include this one header. */
#ifndef SYMLAB_SYMLAB_H
#define SYMLAB_SYMLAB_H

#include <symlab/version.h>
#include <symlab/export.h>
#include <symlab/status.h>
#include <symlab/tensor.h>
#include <symlab/ops.h>
#include <symlab/parallel.h>
#include <symlab/rng.h>
#include <symlab/options.h>
#include <symlab/record.h>
#include <symlab/module.h>
#include <symlab/model.h>
#include <symlab/structure.h>
#include <symlab/optim.h>
#include <symlab/schedule.h>
#include <symlab/data.h>
#include <symlab/datasets.h>
#include <symlab/files.h>
#include <symlab/train.h>
#include <symlab/plugin.h>
#include <symlab/registry.h>

#endif
