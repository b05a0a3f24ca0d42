mod it {
    mod cases;
    mod common;
    mod deploy;
    mod faults;
    mod ha;
    mod library;
    mod push;
    mod removed;
}
