// conv_transpose2d_below.wgsl with inputs that can be the training batch read straight from the
// faces' u8 store (faces.wgsl), as conv_transpose2d_faces.wgsl.
//!include faces
//!include below
//!include conv_transpose2d_tex_core
