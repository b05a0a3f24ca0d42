mod it {
    mod cases;
    mod common;
}
