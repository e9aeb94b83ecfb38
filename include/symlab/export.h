/* symlab/export.h — symbol visibility. */
#ifndef SYMLAB_EXPORT_H
#define SYMLAB_EXPORT_H

/* SL_API marks functions of libsymlab's public interface; everything else in
 * the library is built with -fvisibility=hidden and stays private. */
#if defined(__GNUC__) || defined(__clang__)
#define SL_API __attribute__((visibility("default")))
#else
#define SL_API
#endif

/* SL_PLUGIN_EXPORT marks the one symbol a plugin exports, sl_plugin_entry. */
#ifdef __cplusplus
#define SL_PLUGIN_EXPORT extern "C" SL_API
#else
#define SL_PLUGIN_EXPORT SL_API
#endif

/* printf-style format checking for the error helpers. */
#if defined(__GNUC__) || defined(__clang__)
#define SL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SL_PRINTF(fmt, args)
#endif

#endif
