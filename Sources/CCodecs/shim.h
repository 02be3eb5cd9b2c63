#include <brotli/encode.h>
#include <zstd.h>
#include <lz4.h>
#include <lz4frame.h>
#include <snappy-c.h>
