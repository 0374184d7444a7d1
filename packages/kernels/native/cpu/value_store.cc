// Memory behind value stores: page-aligned anonymous mappings (zeroed, transparent huge pages
// requested: fewer TLB misses on random row gathers) and file mappings; 16-bit float helpers;
// the thread setting.
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>

#include "common.h"

namespace mnemo {

static int g_threads = 0;

int num_threads() {
  if (g_threads <= 0) {
    const unsigned hc = std::thread::hardware_concurrency();
    g_threads = static_cast<int>(std::min(8u, std::max(1u, hc)));
  }
  return g_threads;
}

void set_num_threads(int n) { g_threads = std::max(1, std::min(n, 256)); }

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu;
  uint32_t m = h & 0x3ffu;
  uint32_t u;
  if (e == 0) {
    if (m == 0) {
      u = sign;
    } else {  // subnormal: normalise
      e = 127 - 15 + 1;
      while ((m & 0x400u) == 0) {
        m <<= 1;
        e--;
      }
      m &= 0x3ffu;
      u = sign | (e << 23) | (m << 13);
    }
  } else if (e == 31) {
    u = sign | 0x7f800000u | (m << 13);
  } else {
    u = sign | ((e + 127 - 15) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const int32_t e = static_cast<int32_t>((u >> 23) & 0xffu);
  uint32_t m = u & 0x7fffffu;
  if (e == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (m ? 0x200u : 0u));
  int32_t he = e - 127 + 15;
  if (he >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  if (he <= 0) {
    if (he < -10) return static_cast<uint16_t>(sign);
    m |= 0x800000u;
    const int shift = 14 - he;
    const uint32_t halfway = 1u << (shift - 1);
    const uint32_t rest = m & ((1u << shift) - 1);
    uint32_t hm = m >> shift;
    if (rest > halfway || (rest == halfway && (hm & 1u))) hm++;
    return static_cast<uint16_t>(sign | hm);
  }
  uint32_t hm = m >> 13;
  const uint32_t rest = m & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (hm & 1u))) {
    hm++;
    if (hm == 0x400u) {
      hm = 0;
      he++;
      if (he >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
    }
  }
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(he) << 10) | hm);
}

}  // namespace mnemo
