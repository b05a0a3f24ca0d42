mod it {
    mod cases;
    mod common;
    mod data;
    mod deploy;
    mod faults;
    mod ha;
    mod library;
    mod push;
    mod removed;
}
