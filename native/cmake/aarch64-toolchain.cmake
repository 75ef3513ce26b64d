# Cross build for 64-bit ARM Linux (Raspberry Pi 4 / 5) from x86-64:
#   cmake -S native -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=native/cmake/aarch64-toolchain.cmake
# Tests then run under qemu through CMAKE_CROSSCOMPILING_EMULATOR
# (CPU model from MNQ_QEMU_CPU, default cortex-a72).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
if(NOT DEFINED MNQ_QEMU_CPU)
  set(MNQ_QEMU_CPU cortex-a72)
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-cpu;${MNQ_QEMU_CPU};-L;/usr/aarch64-linux-gnu)
