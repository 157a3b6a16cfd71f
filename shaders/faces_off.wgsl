// faces.wgsl's names for kernel files that read no faces: every FACESk false, so the branches
// that would call face4 compile out.
const FACES0: bool = false;
const FACES2: bool = false;
const FACES3: bool = false;

fn face4(i: u32) -> vec4<f32> {
    return vec4<f32>(0.0);
}

fn face_image(n: u32) {}

struct Face16 {
    a: vec4<f32>,
    b: vec4<f32>,
    c: vec4<f32>,
    d: vec4<f32>,
}

fn face16(i: u32) -> Face16 {
    let z = vec4<f32>(0.0);
    return Face16(z, z, z, z);
}

fn face_last(i: u32) -> f32 {
    return 0.0;
}
