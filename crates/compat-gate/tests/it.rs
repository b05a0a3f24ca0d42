mod it {
    mod cases;
    mod common;
    mod faults;
    mod library;
    mod push;
    mod removed;
}
