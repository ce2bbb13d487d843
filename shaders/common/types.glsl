// Shared declarations for every moevk compute shader.
#ifndef MOEVK_TYPES_GLSL
#define MOEVK_TYPES_GLSL
#extension GL_EXT_control_flow_attributes : enable

// Ceil-division for dispatch/tile math.
uint div_up(uint a, uint b) { return (a + b - 1u) / b; }

#endif
