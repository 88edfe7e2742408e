//! Rule directories holding what is not a regular file: FIFOs, symlink loops, devices, huge files.
