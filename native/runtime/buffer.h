// A 64-byte aligned block of heap memory of a fixed size: the executor's
// activation arenas and its per-thread conv scratch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace mnq {

class Buffer {
 public:
  explicit Buffer(size_t bytes) : size_((bytes + 63) / 64 * 64) {
    data_ = static_cast<uint8_t*>(std::aligned_alloc(64, size_ == 0 ? 64 : size_));
    if (!data_) throw std::bad_alloc();
  }
  ~Buffer() { std::free(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  uint8_t* data() { return data_; }
  size_t size() const { return size_; }  // bytes, a multiple of 64

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace mnq
