mod it {
    mod cases;
    mod common;
    mod faults;
    mod removed;
}
