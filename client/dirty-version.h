/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(__DIRTY_H_INSIDE__) && !defined(DIRTY_COMPILATION)
#error "Only <dirty.h> can be included directly."
#endif

/* The library is built with -fvisibility=hidden: only symbols marked with
 * this macro are exported, so internal protocol code linked into it stays
 * private. */
#define DIRTY_AVAILABLE_IN_ALL __attribute__ ((visibility ("default"))) extern

#define DIRTY_API_VERSION 1
