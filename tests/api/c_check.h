/* Shared by the plain-C tests (each a program of its own): CHECK(cond, fmt, ...) reports a
 * failed condition with its location and message and counts it in `failures`, which main
 * returns. Plain C99 on purpose: the tests prove the header works from C. */
#ifndef MOEVK_TESTS_API_C_CHECK_H
#define MOEVK_TESTS_API_C_CHECK_H
#include <stdio.h>

static int failures = 0;
#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                            \
      fprintf(stderr, "\n");                                                   \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

#endif
