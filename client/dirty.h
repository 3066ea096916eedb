/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#define __DIRTY_H_INSIDE__

#include "dirty-version.h"
#include "dirty-error.h"
#include "dirty-request.h"
#include "dirty-reply.h"
#include "dirty-stream.h"
#include "dirty-client.h"
#include "dirty-call.h"
#include "dirty-app.h"
#include "dirty-worker.h"
#include "dirty-hooks.h"
#include "dirty-json.h"

#undef __DIRTY_H_INSIDE__
